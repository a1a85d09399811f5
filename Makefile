# One install path for everything: `make install` builds .venv from requirements/lock.txt.
# Every other target depends on it; re-running it when nothing changed takes seconds.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q
LOCK := requirements/lock.txt
STAMP := $(VENV)/.sigma-installed

.PHONY: install test test-all demo bench bench-all clean-venv

install: $(STAMP)

$(STAMP): $(LOCK) setup.py
	@echo "== installing into $(VENV) (torch/torchaudio, then fairseq-fixed built against them, then sigma_plugin)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -c $(LOCK) pip setuptools wheel
	# torch, numpy and cython first: fairseq's C++/Cython extensions build against them.
	$(PIP) install -c $(LOCK) torch torchaudio numpy cython
	# --no-build-isolation: otherwise pip's isolated build pulls its own multi-GB torch.
	$(PIP) install -c $(LOCK) --no-build-isolation fairseq-fixed
	$(PIP) install -c $(LOCK) --no-build-isolation -e '.[test]'
	$(PY) -c "import fairseq, torch, torchaudio, sigma_plugin; print('installed: torch', torch.__version__, '| fairseq', fairseq.__version__)"
	touch $@

# The default test run (fast); `make test-all` adds the tests marked slow.
test: install
	$(PY) -m pytest -q -m "not slow" tests

test-all: install
	$(PY) -m pytest -q tests

# The main job on built-in defaults.
demo: install
	PATH=$(abspath $(VENV))/bin:$$PATH bash recipes/demo.sh

bench: install
	$(PY) bench/overhead.py --quick

# Every CPU bench of docs/overhead.md (about 32 min on 2 idle cores) -> bench/out/*.md
bench-all: install
	PYTHON=$(PY) bash bench/run_all.sh

clean-venv:
	rm -rf $(VENV)
