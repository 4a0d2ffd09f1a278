"""Every signature of a model resident in LiteRT, ready to run; idle latencies; memory.

    model = ResidentModel(load_spec("out/rt_elastic"), threads=1)
    logits = model.run("w0.50_d0.75", packed)["logits"]     # packed: tokenizer.Packed
    model.length_for(packed.length)                          # the smallest bucket that holds it
    model.calibrate(runs=7)                                  # {(cell, L): idle ms}

One `Interpreter` per file (the elastic file: one for all its signatures), a signature runner
per (cell, input length), all allocated at load, so switching cells costs nothing.
"""

import os
import time

import numpy as np

INPUT_NAMES = ("token_ids", "segment_ids", "padding_mask")


def rss_bytes():
    """This process's resident set size (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


class ResidentModel:
    """The signatures of a `ModelSpec`, loaded once. Not thread-safe: one caller at a time."""

    def __init__(self, spec, threads=1):
        from ai_edge_litert.interpreter import Interpreter

        self.spec, self.threads = spec, threads
        before = rss_bytes()
        self._interpreters = {f: Interpreter(model_path=f, num_threads=threads)
                              for f in spec.files}
        self._runners = {}
        for cell in spec.cells:
            for length, sig in cell.signatures.items():
                runner = self._interpreters[sig.file].get_signature_runner(sig.key)
                self._runners[cell.name, length] = runner
        for key in self._runners:  # touch every allocation once
            self.run(key[0], _dummy(key[1]), key[1])
        after = rss_bytes()
        self.resident_bytes = (after - before) if before is not None and after else None
        self.file_bytes = sum(os.path.getsize(f) for f in spec.files)
        self.lengths = spec.lengths
        self.output_names = None

    @property
    def keys(self):
        """(cell, length) of every resident signature."""
        return list(self._runners)

    def length_for(self, cell, tokens):
        """The input length `cell` runs `tokens` real tokens at: its smallest signature that
        holds them (the longest if none does)."""
        lengths = sorted(length for c, length in self._runners if c == cell)
        for length in lengths:
            if length >= tokens:
                return length
        return lengths[-1]

    def run(self, cell, packed, length=None):
        """{output name: float array [outputs]} of one example on `cell`'s signature."""
        length = length or self.length_for(cell, packed.length)
        runner = self._runners[cell, length]
        feeds = {"token_ids": packed.token_ids[:length], "segment_ids": packed.segment_ids[:length],
                 "padding_mask": packed.padding_mask[:length]}
        outputs = runner(**{k: np.asarray([v], np.int32) for k, v in feeds.items()})
        return {k: np.asarray(v)[0] for k, v in outputs.items()}

    def calibrate(self, runs=7, warmup=2, clock=time.perf_counter):
        """{(cell, length): idle latency ms}: the lower quartile of `runs` timed calls (the
        least disturbed by other load), after `warmup`."""
        result = {}
        for cell, length in self._runners:
            packed = _dummy(length)
            for _ in range(warmup):
                self.run(cell, packed, length)
            samples = []
            for _ in range(max(1, runs)):
                start = clock()
                self.run(cell, packed, length)
                samples.append((clock() - start) * 1e3)
            samples.sort()
            result[cell, length] = samples[len(samples) // 4]
        return result

    def single_cell_bytes(self, cell):
        """Resident bytes of `cell` alone, measured by loading it again in a fresh interpreter
        (its own file, or the elastic file with only its signatures)."""
        from ai_edge_litert.interpreter import Interpreter

        spec_cell = self.spec.cell(cell)
        before = rss_bytes()
        interpreters = {}
        for length, sig in spec_cell.signatures.items():
            if self.spec.format == "elastic" and length != self.spec.seq_len:
                continue  # one cell: its full-length signature
            interpreter = interpreters.setdefault(
                sig.file, Interpreter(model_path=sig.file, num_threads=self.threads))
            runner = interpreter.get_signature_runner(sig.key)
            dummy = _dummy(length)
            runner(**{k: np.asarray([getattr(dummy, k)], np.int32) for k in INPUT_NAMES})
        after = rss_bytes()
        del interpreters
        return (after - before) if before is not None and after else None


class _Dummy:
    def __init__(self, length):
        self.length = length
        self.token_ids = [0] * length
        self.segment_ids = [0] * length
        self.padding_mask = [1] * length


def _dummy(length):
    return _Dummy(length)
