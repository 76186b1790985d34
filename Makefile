# Two commands do everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum requirements.txt | cut -d' ' -f1)

.PHONY: install test test-fast demo bench clean

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-compile -r requirements.txt
	@# pip byte-compiles on one core; compileall uses every core (install 79 s -> 63 s on 2 cores). Like pip, it
	@# skips files that are not valid Python 3 (templates, test data shipped inside packages).
	$(PY) -m compileall -q -j 0 $(VENV)/lib > /dev/null || true
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the pinned requirements

# One pytest worker per core plus one: many tests wait on subprocesses, servers and sockets, and the extra worker
# keeps both cores busy meanwhile (2 cores: 83 % busy with 2 workers, 98 % with 3; the suite 1068 s -> 1002 s).
# A file's tests stay on one worker so its module fixtures are built once. Files keep the order tests/conftest.py
# gives them (the long ones first), not xdist's order by number of tests.
NPROC := $(shell nproc 2>/dev/null || echo 2)
PYTEST := $(PY) -m pytest -q -n $(shell expr $(NPROC) + 1) --dist loadfile --no-loadscope-reorder

test: $(STAMP)  ## the whole test suite (what CI runs)
	$(PYTEST) tests

test-fast: $(STAMP)  ## skip the tests marked slow
	$(PYTEST) -m "not slow" tests

demo: $(STAMP)  ## train the demo model on the embedded data set, writes runs/demo/
	$(PY) -m restorenet_jax.main --config configs/bsd64.py:demo --workdir runs/demo

bench: $(STAMP)  ## benchmark harness, quick CPU shapes
	$(PY) -m restorenet_jax.bench --quick

clean:
	rm -rf $(VENV) .cache runs
