#!/bin/sh
# The Python of every Bazel py_binary/py_test: this checkout's virtualenv (`make .venv/.installed`).
# Bazel runs this file through a runfiles symlink; resolving it finds the source tree.
here=$(dirname "$(readlink -f "$0")")
venv_python="$here/../../.venv/bin/python"
if [ ! -x "$venv_python" ]; then
    echo "venv_python.sh: $venv_python missing; run \`make .venv/.installed\` first" >&2
    exit 2
fi
exec "$venv_python" "$@"
