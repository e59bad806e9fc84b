# Two commands: `make demo` and `make test`. Each bootstraps .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The CIFAR-10 zoo model's weights; --no-deps because its metadata pins TensorFlow (not needed).
	$(PY) -m pip install --quiet --no-deps cifar-10-model==7.4.0
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m nnrules demo

test: $(STAMP)
	$(PY) -m pytest -q

bench: $(STAMP)
	$(PY) benchmarks/record.py
	$(PY) benchmarks/explainn.py

clean:
	rm -rf $(VENV) build *.egg-info
