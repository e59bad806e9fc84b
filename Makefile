# `make app` (the explorer in your browser), `make demo` (the same in the terminal), `make test`.
# Each bootstraps .venv on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: app demo test browser bench clean
PORT ?= 8866
# The only folder the app reads files from; kernels: at most MAX_KERNELS page visits alive, idle ones culled.
DATA ?= notebooks/data
MAX_KERNELS ?= 8
IDLE_TIMEOUT ?= 900

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	# The CIFAR-10 zoo model's weights; --no-deps because its metadata pins TensorFlow (not needed).
	$(PY) -m pip install --quiet --no-deps cifar-10-model==7.4.0
	# numba compiles the miners once and caches the machine code: the app's first Mine is then fast
	$(PY) -m nnrules warmup
	touch $(STAMP)

app: $(STAMP)
	$(VENV)/bin/nnrules app --data "$(DATA)" --port $(PORT) --max-kernels $(MAX_KERNELS) --idle-timeout $(IDLE_TIMEOUT)

demo: $(STAMP)
	$(PY) -m nnrules demo

test: $(STAMP) browser
	$(VENV)/bin/mypy
	$(PY) -m pytest -q --durations=12

# The browser tests drive Debian's Chromium; install it where we may (root with apt), else they skip.
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) ; } || \
	  echo "chromium not installed and cannot be installed here: the browser tests will be skipped"
	@# Fashion-MNIST (fashion-cnn, real photos): Debian's dataset-fashion-mnist, likewise
	@[ -d /usr/share/datasets/fashion-mnist ] || [ -n "$$NNRULES_FASHION_MNIST" ] || { [ "$$(id -u)" = 0 ] && \
	  command -v apt-get >/dev/null 2>&1 && (DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	  dataset-fashion-mnist >/dev/null 2>&1 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive \
	  apt-get install -y -qq dataset-fashion-mnist >/dev/null)) ; } || \
	  echo "Fashion-MNIST not installed and cannot be installed here: the fashion-cnn tests will be skipped"

bench: $(STAMP)
	$(PY) benchmarks/record.py
	$(PY) benchmarks/explainn.py
	$(PY) benchmarks/explain.py
	$(PY) benchmarks/itemsets.py
	$(PY) benchmarks/eric.py
	$(PY) benchmarks/patches.py
	$(PY) benchmarks/neurochains.py
	$(PY) benchmarks/evidence.py

clean:
	rm -rf $(VENV) build *.egg-info
