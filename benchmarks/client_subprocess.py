"""Runs a client (MediaPipe, the Task Library) on a file in a subprocess of its own, so a
client that aborts on a file does not end the benchmark. The client script prints one line
`RESULT <json>`; anything else is its failure, reported by its first telling line."""

import json
import subprocess

_TELLING = ("Error", "error", "failed", "Failed", "RuntimeError", "version", "Abort")


def run_client(python, script, path, payload):
    """{"opens": bool, "tops": the script's result | None, "error": a line | None}:
    `python -c script path json(payload)`."""
    try:
        done = subprocess.run([python, "-c", script, path, json.dumps(payload)],
                              capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        return {"opens": False, "tops": None, "error": "timed out"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return {"opens": True, "tops": json.loads(line[7:]), "error": None}
    lines = [line for line in (done.stderr + done.stdout).splitlines()
             if any(k in line for k in _TELLING)]
    return {"opens": False, "tops": None,
            "error": (lines[-1] if lines else f"exit {done.returncode}")[:300]}
