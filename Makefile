# One command for the main job, one for the tests; each creates the virtual
# environment and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Build requirements are installed into the venv so rebuilding the extension does
# not fetch an isolated build environment every time.
BUILD_REQS := scikit-build-core==1.1.2 pybind11==3.1.0 cmake==4.4.4

.PHONY: demo test install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(BUILD_REQS)

install: $(BIN)/python
	$(BIN)/python -m pip install -q --no-build-isolation ".[test]"

demo: install
	$(BIN)/tflm-vit demo

test: install
	$(BIN)/pytest -q

bench: install
	$(BIN)/python bench/stock_tflm.py
	$(BIN)/python bench/isqrt_iterations.py
	$(BIN)/python bench/fidelity.py
	$(BIN)/python bench/memory.py

clean:
	rm -rf build $(VENV) runs
