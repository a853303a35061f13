#!/usr/bin/env bash
# Prints the path of a TFLM source tree our firmware builds can use, making one if needed.
#
#   custom_ops/firmware/tflm_tree.sh BUILD_DIR
#
# 1. $TFLM_ROOT, when set: the user's own tree (checked, never modified except for
#    the toolchain links below, which TFLM's cortex_m targets look for).
# 2. else a tree already unpacked under BUILD_DIR/tflite-micro;
# 3. else the tarball in $TFLM_VIT_THIRD_PARTY, or else in shared/third_party/ beside
#    the repository (what CI and machines without network use);
# 4. else, with network, `git clone` of TFLM at the pinned commit plus TFLM's own
#    download scripts (they run on the first make).
# Every route ends with the same interface check: a tree whose interfaces we do not
# build against is refused with one line naming what is missing.
set -euo pipefail

PINNED_COMMIT=90b983c2b3f1480642e040bbd2ddb37b998f3424
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
build="${1:?usage: tflm_tree.sh BUILD_DIR}"
mkdir -p "$build"
build="$(cd "$build" && pwd)"

die() { echo "tflm-vit: $*" >&2; exit 2; }

if [[ -n "${TFLM_ROOT:-}" ]]; then
  [[ -d "$TFLM_ROOT" ]] || die "TFLM_ROOT=$TFLM_ROOT is not a directory"
  tree="$(cd "$TFLM_ROOT" && pwd)"
elif [[ -f "$build/tflite-micro/.tflm_vit_unpacked" ]]; then
  tree="$build/tflite-micro"
else
  third_party="${TFLM_VIT_THIRD_PARTY:-$repo/../shared/third_party}"
  tarball="$(ls "$third_party"/tflite-micro-*.tar.xz 2>/dev/null | head -n1 || true)"
  rm -rf "$build/tflite-micro"
  if [[ -n "$tarball" ]]; then
    tar -xJf "$tarball" -C "$build"
  elif git ls-remote https://github.com/tensorflow/tflite-micro >/dev/null 2>&1; then
    git clone -q https://github.com/tensorflow/tflite-micro "$build/tflite-micro"
    git -C "$build/tflite-micro" checkout -q "$PINNED_COMMIT"
  else
    die "no TFLM tree: set TFLM_ROOT to a tflite-micro checkout (commit ${PINNED_COMMIT:0:8}), or provide shared/third_party/tflite-micro-*.tar.xz, or a network to clone it"
  fi
  touch "$build/tflite-micro/.tflm_vit_unpacked"
  tree="$build/tflite-micro"
fi

# The interfaces the adapters and the runner are written against (TFLM >= 2024-03).
check() {  # file, pattern, what
  [[ -f "$tree/$1" ]] || die "TFLM tree $tree: $1 is missing (not a tflite-micro tree?)"
  grep -q -- "$2" "$tree/$1" || die "TFLM tree $tree: $1 lacks $3; tflm-vit builds against TFLM ${PINNED_COMMIT:0:8} and its interfaces"
}
check tensorflow/lite/micro/tools/make/Makefile "EXTERNAL_DIR" "the EXTERNAL_DIR make hook"
check tensorflow/lite/micro/micro_common.h "struct TFLMRegistration" "TFLMRegistration"
check tensorflow/lite/micro/micro_context.h "GetMicroContext" "GetMicroContext()"
check tensorflow/lite/micro/micro_mutable_op_resolver.h "AddCustom(const char\* name" "MicroMutableOpResolver::AddCustom(const char*, const TFLMRegistration*)"
check tensorflow/lite/micro/recording_micro_interpreter.h "class RecordingMicroInterpreter" "RecordingMicroInterpreter"
check tensorflow/lite/core/c/common.h "TfLitePtrUnion" "TfLitePtrUnion"

# TFLM's cortex_m_* targets put downloads/gcc_embedded/bin first on PATH and skip their
# own toolchain download when it exists: point it at the system's arm-none-eabi tools.
gcc_dir="$tree/tensorflow/lite/micro/tools/make/downloads/gcc_embedded/bin"
if [[ ! -d "$gcc_dir" ]] && command -v arm-none-eabi-gcc >/dev/null; then
  mkdir -p "$gcc_dir"
  ln -sf "$(dirname "$(command -v arm-none-eabi-gcc)")"/arm-none-eabi-* "$gcc_dir/"
fi
echo "$tree"
