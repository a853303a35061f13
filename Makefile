# One command for the main job, one for the tests; each creates the virtual
# environment and installs what it needs on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# Build requirements are installed into the venv so rebuilding the extension does
# not fetch an isolated build environment every time.
BUILD_REQS := scikit-build-core==1.1.2 pybind11==3.1.0 cmake==4.4.4

# Debian packages for the firmware builds and on-target tests (Cortex-M toolchain and
# newlib, QEMU's MPS2 boards, bazel 4 for the kernel tests). ccache is optional (the
# reference and CMSIS-NN builds' common TFLM sources then compile once): installed where
# apt can run, otherwise the builds compile every object.
FIRMWARE_DEBS := gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib \
                 qemu-system-arm bazel-bootstrap
FIRMWARE_TOOLS := arm-none-eabi-gcc arm-none-eabi-g++ qemu-system-arm bazel

# flatbuffers' headers for the host build (our ops' options are FlexBuffers maps): a TFLM
# tree's download ($TFLM_ROOT) or TFLM_VIT_FLATBUFFERS_INCLUDE serve too.
HOST_DEBS := libflatbuffers-dev
FLEXBUFFERS_H := /usr/include/flatbuffers/flexbuffers.h

# Debian's Fashion-MNIST (the search benchmark's data; a test reads it).
DATA_DEBS := dataset-fashion-mnist
DATA_DIR  := /usr/share/datasets/fashion-mnist

.PHONY: demo search test install bench clean firmware-deps firmware data-deps host-deps

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(BUILD_REQS)

# keras_hub's ViT, for its foreign-ViT test: keras-hub's install pulls a second TensorFlow
# in through tensorflow-text, which its ViT never imports, so it comes without its
# dependencies, with the two its import needs.
KERAS_HUB := keras-hub==0.32.0 regex==2026.12.2 tokenizers==0.23.3

install: $(BIN)/python host-deps
	$(BIN)/python -m pip install -q --no-build-isolation ".[test]"
	$(BIN)/python -m pip install -q --no-deps $(KERAS_HUB)

# Installs flatbuffers' headers with apt when no flexbuffers.h is at hand (root, or sudo
# without a password); otherwise says which package to install.
host-deps:
	@if [ ! -f $(FLEXBUFFERS_H) ] && [ -z "$$TFLM_ROOT" ] && [ -z "$$TFLM_VIT_FLATBUFFERS_INCLUDE" ]; then \
	  echo "installing $(HOST_DEBS) (missing: $(FLEXBUFFERS_H))"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "need root to install: apt-get install $(HOST_DEBS)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    $(HOST_DEBS) >/dev/null || exit 1; \
	fi

# The main job: the pipeline on the demo's subnet, then a small search under an SRAM
# budget the space's largest subnet does not meet (minutes each on 2 CPU cores).
demo: install
	$(BIN)/tflm-vit demo
	$(BIN)/tflm-vit search --quick --sram 16KB --out runs/search

# The search for a real board on real data: Fashion-MNIST on the STM32F746 (MCUFormer's
# board), default settings (within 2 hours on 2 CPU cores; resumable).
search: install data-deps
	$(BIN)/tflm-vit search --board stm32f746 --data fashion-mnist --out runs/stm32f746

# Installs Fashion-MNIST with apt when it is missing (root, or sudo without a password);
# otherwise says which package to install.
data-deps:
	@if [ ! -d $(DATA_DIR) ]; then \
	  echo "installing $(DATA_DEBS) (missing: $(DATA_DIR))"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "need root to install: apt-get install $(DATA_DEBS)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    $(DATA_DEBS) >/dev/null || exit 1; \
	fi

# Installs the firmware packages with apt when a tool is missing (root, or sudo without a
# password); otherwise says which packages to install.
firmware-deps:
	@missing=""; for t in $(FIRMWARE_TOOLS); do command -v $$t >/dev/null || missing="$$missing $$t"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing firmware tools (missing:$$missing)"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "need root to install: apt-get install $(FIRMWARE_DEBS)" >&2; exit 1; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    $(FIRMWARE_DEBS) >/dev/null || exit 1; \
	fi; \
	if ! command -v ccache >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then SUDO=""; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; \
	  else echo "ccache not installed: TFLM builds compile every object (apt-get install ccache)"; \
	    exit 0; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	    ccache >/dev/null || exit 1; \
	fi

# TFLM with our ops for every emulated CPU and kernel set (minutes the first time).
firmware: install firmware-deps
	for cpu in cortex-m7 cortex-m4; do for k in reference cmsis_nn; do \
	  $(BIN)/python -P -m tflm_vit.firmware.qemu build --cpu $$cpu --kernels $$k || exit 1; \
	done; done

test: install firmware-deps data-deps
	$(BIN)/pytest -q --durations=30

bench: install firmware-deps data-deps
	$(BIN)/python bench/stock_tflm.py
	$(BIN)/python bench/isqrt_iterations.py
	$(BIN)/python bench/recipe.py
	$(BIN)/python bench/fidelity.py
	$(BIN)/python bench/memory.py
	$(BIN)/python bench/firmware.py
	$(BIN)/python bench/speed.py
	$(BIN)/python bench/search.py

clean:
	rm -rf build $(VENV) runs
