# `make test` and `make demo` create or reuse .venv and install what is missing.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: test demo smoke clean

$(STAMP): requirements.txt setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps -e .
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q tests

smoke: $(STAMP)
	$(PY) -m train.run --flagfile=configs/smoke.flags --workdir=workdirs/smoke

demo: $(STAMP)
	$(PY) -m train.run --flagfile=configs/demo.flags --workdir=workdirs/demo

clean:
	rm -rf $(VENV) workdirs
