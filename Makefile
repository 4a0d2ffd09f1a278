# `make test` and `make demo` create or reuse .venv and install what is missing
# (--no-cache-dir: the TensorFlow stack is ~3 GB installed; a pip cache would double it).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo smoke clean

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-cache-dir --no-deps -e .
	touch $(STAMP)

# Two workers (the end-to-end tests are single-threaded subprocess runs); a file's tests stay
# on one worker, so its module-scoped runs happen once. Files keep the order conftest.py gives
# them (the end-to-end ones first), not xdist's most-tests-first.
test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist=loadfile --no-loadscope-reorder tests

smoke: $(STAMP)
	$(PY) -m train.run --flagfile=configs/smoke.flags --workdir=workdirs/smoke

demo: $(STAMP)
	$(PY) -m train.run --flagfile=configs/demo.flags --workdir=workdirs/demo

clean:
	rm -rf $(VENV) workdirs
