"""What every part of the project agrees on, importable without TensorFlow.

    layout      file names of model dirs, workdirs and exports; finding a workdir's model
    choices     the valid values of settings that the library also checks
    grid        kept layers / heads / neurons, cell names (the elastic rules)
    files       atomic writes, JSON reading, streaming sha256
    safetensors_header   a weights file's header, read without loading the tensors
    errors      one-line error reporting of the command-line tools
    cli         the tools' flag parsing: a bad flag or argument is one line, exit status 2
    progress    the one progress-bar helper

`train/preflight.py`, the run-time (`mobile/runtime/`) and the TensorFlow library import
the same objects from here, so nothing is copied to keep start-up fast.
"""
