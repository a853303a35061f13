"""Firmware: our ops in real TFLM builds for Cortex-M7 (reference and CMSIS-NN kernels)
and Cortex-M4 (CMSIS-NN; its reference build is the benchmark's), run under
qemu-system-arm.

- the TFLM tree: TFLM_ROOT missing or not a TFLM tree of our interfaces is a clear error;
- the adapters compile against real TFLM with -Wall -Wextra -Werror for the host, M4 and
  M7 (and with TF_LITE_STRIP_ERROR_STRINGS), and reference no libc formatting;
- the portable kernels replay the NumPy references' test vectors bit for bit on target;
- R0, the demo's model and five random subnets, stock / converted / planned: outputs on
  target identical to the wheel's, the arena TFLM records there equal to the memory
  model's prediction for the target, and each planned model runs in exactly the arena we
  tell the user and fails (with TFLM's error surfaced) 16 bytes below it;
- the README's firmware steps: export-c + the make fragment + the example app, and the
  CMake target, each built and run on the emulated M7; bazel builds and tests the kernels;
- the QEMU runner treats a failure exit, a missing pass marker and a hang as failures.
"""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from tflm_vit.firmware import instructions, on_target, qemu

REPO = pathlib.Path(__file__).resolve().parents[1]
# Every CPU x kernels build but the M4 with the reference kernels: the benchmark runs it
# (bench/firmware.py, `make bench`); here it would check nothing the M7 reference and M4
# CMSIS-NN builds do not (both CPUs ARMv7E-M with one ABI, one memory-model target per
# kernel set) and cost minutes of every CI run.
BUILDS = [(cpu, k) for cpu in on_target.CPUS for k in on_target.KERNELS
          if (cpu, k) != ("cortex-m4", "reference")]
FORMATTING = {"printf", "sprintf", "snprintf", "vsnprintf", "vsprintf", "vprintf", "fprintf",
              "vfprintf"}


@pytest.fixture(scope="module")
def tree():
    return qemu.tflm_tree()


@pytest.fixture(scope="module", params=BUILDS, ids=["-".join(b) for b in BUILDS])
def build(request):
    cpu, kernels = request.param
    return qemu.build(cpu, kernels)


# --- the TFLM tree ----------------------------------------------------------------------

def _tree_script(tmp_path, env_root):
    env = {**os.environ, "TFLM_ROOT": str(env_root)}
    return subprocess.run(["bash", str(REPO / "custom_ops/firmware/tflm_tree.sh"),
                           str(tmp_path / "b")], capture_output=True, text=True, env=env)


def test_tflm_root_missing_or_wrong_is_a_clear_error(tmp_path, tree):
    proc = _tree_script(tmp_path, tmp_path / "nowhere")
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"tflm-vit: TFLM_ROOT={tmp_path / 'nowhere'} is not a directory"
    fake = tmp_path / "fake"
    (fake / "tensorflow/lite/micro/tools/make").mkdir(parents=True)
    proc = _tree_script(tmp_path, fake)
    assert proc.returncode == 2 and "Makefile is missing (not a tflite-micro tree?)" in proc.stderr
    # A tree of another TFLM version: an interface we build against is gone.
    old = tmp_path / "old"
    shutil.copytree(tree / "tensorflow/lite", old / "tensorflow/lite",
                    ignore=shutil.ignore_patterns("downloads", "kernels", "gen"))
    header = old / "tensorflow/lite/micro/micro_common.h"
    header.write_text(header.read_text().replace("struct TFLMRegistration", "struct Old"))
    proc = _tree_script(tmp_path, old)
    assert proc.returncode == 2
    assert "micro_common.h lacks TFLMRegistration" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


# --- the adapters against real TFLM -------------------------------------------------------

def _compile_adapters(tree, compiler, flags, out_dir):
    from concurrent.futures import ThreadPoolExecutor
    dl = tree / "tensorflow/lite/micro/tools/make/downloads"
    sources = [s for s in sorted((REPO / "custom_ops/tflm").glob("*.cc"))
               if s.name != "wheel_registerer.cc"]

    def compile_one(src):
        obj = out_dir / (src.stem + ".o")
        proc = subprocess.run(
            [compiler, *flags, "-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions",
             "-DTF_LITE_STATIC_MEMORY", "-Wall", "-Wextra", "-Werror",
             "-isystem", str(tree), "-isystem", str(dl / "flatbuffers/include"),
             "-isystem", str(dl / "gemmlowp"), f"-I{REPO / 'custom_ops/kernels'}",
             f"-I{REPO / 'custom_ops/tflm'}", "-c", str(src), "-o", str(obj)],
            capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name} with {compiler} {flags}:\n{proc.stderr[-3000:]}"
        return obj
    with ThreadPoolExecutor(os.cpu_count() or 2) as pool:  # one compiler per core
        return list(pool.map(compile_one, sources))


@pytest.mark.parametrize("strip", [False, True], ids=["messages", "stripped"])
def test_adapters_compile_with_werror_for_host_m4_and_m7(tree, tmp_path, strip):
    extra = ["-DTF_LITE_STRIP_ERROR_STRINGS"] if strip else []
    _compile_adapters(tree, "g++", extra, tmp_path)
    # The M4 and the M7 are both ARMv7E-M (the same instructions and predefined macros
    # for this code): one of them per variant covers both and halves the compile time.
    cpu = "cortex-m4" if strip else "cortex-m7"
    objs = _compile_adapters(tree, "arm-none-eabi-g++",
                             [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=soft", *extra], tmp_path)
    undefined = subprocess.run(["arm-none-eabi-nm", "-u", *map(str, objs)],
                               capture_output=True, text=True, check=True).stdout
    used = {line.split()[-1] for line in undefined.splitlines() if line.strip()
            and not line.endswith(":")}
    assert not used & FORMATTING, f"libc formatting in firmware code: {used & FORMATTING}"
    if strip:  # every message compiles out: no logger is referenced at all
        assert not any("MicroPrintf" in s or "VMicroPrintf" in s for s in used), used


def test_resolver_methods_are_tflm_methods(tree):
    from tflm_vit.export_c import RESOLVER_METHODS
    header = (tree / "tensorflow/lite/micro/micro_mutable_op_resolver.h").read_text()
    for builtin, method in RESOLVER_METHODS.items():
        assert f"TfLiteStatus {method}(" in header, f"{builtin}: {method} not in TFLM"


# --- on target ------------------------------------------------------------------------------

def test_kernel_vectors_bit_exact_on_target(build, tmp_path):
    from tflm_vit.twins.vectors import write_vectors
    path = tmp_path / "vectors.bin"
    n = write_vectors(path, cases_per_kernel=12, seed=7)
    result = qemu.run(build.vector_tests, build.cpu, [path], marker="TFLM_VIT_VECTORS_PASS")
    assert f"TFLM_VIT_VECTORS_PASS {n}" in result.output


def test_kernel_vectors_catch_a_wrong_byte(tmp_path):
    # The replay is not vacuous: flip one expected byte and it fails, naming the case.
    from tflm_vit.twins.vectors import write_vectors
    path = tmp_path / "vectors.bin"
    write_vectors(path, cases_per_kernel=1, seed=3)
    data = bytearray(path.read_bytes())
    data[-4] ^= 0x01  # inside the last case's expected output (padded to 4)
    bad = tmp_path / "bad.bin"
    bad.write_bytes(bytes(data))
    exe = tmp_path / "vector_tests"
    kernels = sorted(map(str, (REPO / "custom_ops/kernels").glob("*.c")))
    subprocess.run(["gcc", "-std=c99", "-O1", "-Wall", "-Wextra", "-Werror",
                    "-fsanitize=address,undefined", f"-I{REPO / 'custom_ops/kernels'}",
                    str(REPO / "custom_ops/tests/vector_tests.c"), *kernels, "-lm", "-o",
                    str(exe)], check=True)
    ok = subprocess.run([str(exe), str(path)], capture_output=True, text=True)
    assert ok.returncode == 0 and "TFLM_VIT_VECTORS_PASS 10" in ok.stdout
    fail = subprocess.run([str(exe), str(bad)], capture_output=True, text=True)
    assert fail.returncode == 1 and "NumPy says" in fail.stdout


@pytest.fixture(scope="module")
def models(trained_supernet, digits):
    """R0, the demo's model (the default space's largest subnet of the session's briefly
    trained supernet) and five random subnets, each stock / converted / planned."""
    return on_target.models(demo_net=trained_supernet, demo_images=digits.x_train)


def test_models_on_target_match_the_wheel_and_the_memory_model(build, models, tmp_path):
    rows = on_target.check_on_target(build, models, tmp_path)
    assert len(rows) == 21
    assert on_target.problems(rows) == []
    # R0's rows are the committed benchmark's (bench/results/firmware.json, which
    # bench/firmware.py writes with this same on_target.check_on_target): its seeded
    # weights are the benchmark's, so every measured figure regenerates.
    committed = json.loads((REPO / "bench/results/firmware.json").read_text())["models"]
    fields = ("arena_measured", "arena_predicted", "outputs_match_wheel", "flash")
    for r in rows:
        if r["name"] != "R0":
            continue
        (c,) = [c for c in committed if (c["name"], c["variant"], c["cpu"], c["kernels"])
                == ("R0", r["variant"], r["cpu"], r["kernels"])]
        assert {k: r[k] for k in fields} == {k: c[k] for k in fields}, r["variant"]


def test_common_cnn_builtins_on_target_match_the_memory_model(build, tmp_path):
    # Every builtin the memory model knows that Keras gives (tflm_vit.model_zoo's op
    # sampler: depthwise and pooling with CMSIS-NN's scratch, concatenation, strided
    # slice, pad, hard swish, pack, gather, ...): the arena TFLM records on the target is
    # the prediction for it, stock and planned, and the output is the wheel's.
    import re

    import numpy as np

    from tflm_vit import model_zoo, runtime
    from tflm_vit.memory import plan_model, predict
    target = on_target.TARGET_OF[build.kernels]
    stock = model_zoo.build("op_sampler")
    image = np.random.default_rng(0).integers(-128, 128, (1, 16, 16, 8), dtype=np.int8)
    (tmp_path / "in.bin").write_bytes(image.tobytes())
    for name, data in (("stock", stock), ("planned", plan_model(stock, target=target).model)):
        (tmp_path / f"{name}.tflite").write_bytes(data)
        run = qemu.run(build.model_runner, build.cpu, [tmp_path / f"{name}.tflite",
                                                       tmp_path / "in.bin", 1 << 20],
                       marker="TFLM_VIT_RUN_PASS")
        used = int(re.search(r"arena_used_bytes (\d+)", run.output).group(1))
        assert used == predict(data, target).total, name
        out = bytes.fromhex(re.search(r"output ([0-9a-f]+)", run.output).group(1))
        assert out == runtime.invoke(data, image)[0].tobytes(), name


def test_planned_model_below_its_arena_surfaces_tflms_error(tmp_path):
    build = qemu.build("cortex-m7", "reference")
    from tflm_vit.memory import predict
    from tflm_vit.memory.targets import get_target
    (m,) = [m for m in on_target.models_r0() if m.variant == "planned"]
    path, inp = tmp_path / "m.tflite", tmp_path / "in.bin"
    path.write_bytes(m.data)
    inp.write_bytes(m.image.tobytes())
    arena = get_target("cortex-m").arena_to_give(predict(m.data, "cortex-m"))
    with pytest.raises(qemu.FirmwareError) as e:
        qemu.run(build.model_runner, "cortex-m7", [path, inp, arena - 16],
                 marker="TFLM_VIT_RUN_PASS")
    assert "exit 1" in str(e.value) and "Failed to allocate" in str(e.value)


def test_a_model_given_less_than_its_arena_is_reported_as_not_running():
    # What the search benchmark's on-target claim rests on (bench/search.py): a model in
    # too small an arena is not "run", and in enough it runs with the wheel's output and
    # the memory model's arena for the target.
    from tflm_vit.memory import predict
    (m,) = [m for m in on_target.models_r0() if m.variant == "planned"]
    small = on_target.run_in_arena(m.data, m.image, "cortex-m7", 2048, kernels="reference")
    assert small == on_target.ArenaRun(None, False, None)
    ok = on_target.run_in_arena(m.data, m.image, "cortex-m7", 1 << 20, kernels="reference")
    assert ok.matches_wheel and ok.arena_used == predict(m.data, "cortex-m").total
    assert ok.instructions is None


def test_runner_treats_failure_missing_marker_and_hang_as_failures(tmp_path):
    build = qemu.build("cortex-m7", "reference")
    with pytest.raises(qemu.FirmwareError, match="exit 2"):
        qemu.run(build.vector_tests, "cortex-m7", [tmp_path / "missing.bin"],
                 marker="TFLM_VIT_VECTORS_PASS")
    from tflm_vit.twins.vectors import write_vectors
    path = tmp_path / "v.bin"
    write_vectors(path, cases_per_kernel=1)
    with pytest.raises(qemu.FirmwareError, match="without its pass marker NOT_THERE"):
        qemu.run(build.vector_tests, "cortex-m7", [path], marker="NOT_THERE")
    with pytest.raises(qemu.FirmwareError, match="hang"):
        # Waits for the debugger that never comes: QEMU never exits.
        qemu.run(build.vector_tests, "cortex-m7", [path], marker="TFLM_VIT_VECTORS_PASS",
                 timeout=3, qemu_args=["-S"])


# --- the README's firmware steps ------------------------------------------------------------

@pytest.fixture(scope="module")
def r0_planned_path(tmp_path_factory):
    (m,) = [m for m in on_target.models_r0() if m.variant == "planned"]
    path = tmp_path_factory.mktemp("r0") / "r0_planned.tflite"
    path.write_bytes(m.data)
    return path


def _cli(*args):
    return subprocess.run([sys.executable, "-P", "-m", "tflm_vit.cli", *map(str, args)],
                          capture_output=True, text=True, cwd="/")


def test_export_c_and_the_make_fragment_build_the_example_app(tree, r0_planned_path, tmp_path):
    # README, "Firmware with TFLM's make build".
    proc = _cli("export-c", r0_planned_path, "-o", tmp_path / "model")
    assert proc.returncode == 0, proc.stderr
    header = (tmp_path / "model.h").read_text()
    from tflm_vit.memory import predict
    from tflm_vit.memory.targets import get_target
    arena = get_target("cortex-m").arena_to_give(predict(r0_planned_path, "cortex-m"))
    assert f"constexpr size_t kArenaSize = {arena};" in header
    assert "constexpr unsigned int kOpCount = 7;" in header  # ADD, MEAN + 5 of ours
    source = (tmp_path / "model.cc").read_text()
    assert source.count("resolver.Add") == 7 and "alignas(16)" in source
    build = qemu.build("cortex-m7", "reference", targets=("tflm_vit_example", "tflm_vit_dropin"),
                       TFLM_VIT_EXAMPLE_MODEL=tmp_path / "model")
    result = qemu.run(build.example, "cortex-m7", marker="TFLM_VIT_EXAMPLE_PASS")
    assert f"of {arena} bytes" in result.output
    # The README's drop-in: an app that includes only tflm_vit_ops.h for our ops.
    qemu.run(build.bindir / "tflm_vit_dropin", "cortex-m7", marker="TFLM_VIT_DROPIN_PASS")


def test_make_compiles_through_ccache_where_installed(monkeypatch, tmp_path):
    # ccache where installed (make test installs it), off with TFLM_VIT_CCACHE=0. That its
    # objects are the compiler's own, every instruction count and flash figure the tests
    # regenerate from these builds checks.
    monkeypatch.setattr(qemu.shutil, "which",
                        lambda tool: "/usr/bin/ccache" if tool == "ccache" else None)
    args = qemu.make_args(tmp_path, "cortex-m7", "reference")
    assert {"CC=/usr/bin/ccache arm-none-eabi-gcc",
            "CXX=/usr/bin/ccache arm-none-eabi-g++"} <= set(args)
    monkeypatch.setenv("TFLM_VIT_CCACHE", "0")
    args = qemu.make_args(tmp_path, "cortex-m7", "reference")
    assert not any(a.startswith(("CC=", "CXX=")) for a in args)
    monkeypatch.delenv("TFLM_VIT_CCACHE")
    monkeypatch.setattr(qemu.shutil, "which", lambda tool: None)
    assert not any(a.startswith(("CC=", "CXX=")) for a in qemu.make_args(
        tmp_path, "cortex-m7", "reference"))


def test_every_build_links_a_fresh_archive(tmp_path):
    """TFLM's make adds objects to the archive of the last build (`ar -r`): a member whose
    source is gone would stay and new ones would go last, so an incremental build would
    link in another order than a fresh one (CI's M7 flash was 8 bytes off this way).
    qemu.build archives anew: a stale member planted in the archive is gone after it."""
    build = qemu.build("cortex-m7", "reference")
    lib = build.bindir.parent / "lib" / "libtensorflow-microlite.a"
    (tmp_path / "tv_stale.c").write_text("int tv_stale(void) { return 1; }\n")
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-c", str(tmp_path / "tv_stale.c"),
                    "-o", str(tmp_path / "tv_stale.o")], check=True)
    subprocess.run(["arm-none-eabi-ar", "r", str(lib), str(tmp_path / "tv_stale.o")], check=True)
    members = lambda: subprocess.run(["arm-none-eabi-ar", "t", str(lib)], check=True,  # noqa
                                     capture_output=True, text=True).stdout.split()
    assert "tv_stale.o" in members()
    qemu.build("cortex-m7", "reference")
    assert "tv_stale.o" not in members() and "options_reader.o" in members()


@pytest.mark.parametrize("cpu", ["cortex-m7", "cortex-m4"])
def test_board_flash_budgets_leave_room_for_the_example_firmware(r0_planned_path, tmp_path,
                                                                 cpu):
    """search/boards.py's FIRMWARE_FLASH is what our example firmware (TFLM + CMSIS-NN +
    our ops + the example app) takes without its model: text + data of the ELF less the
    model array."""
    from tflm_vit.search.boards import FIRMWARE_FLASH
    assert _cli("export-c", r0_planned_path, "-o", tmp_path / "model").returncode == 0
    build = qemu.build(cpu, "cmsis_nn", targets=("tflm_vit_example",),
                       TFLM_VIT_EXAMPLE_MODEL=tmp_path / "model")
    sizes = subprocess.run(["arm-none-eabi-size", "-A", str(build.example)],
                           capture_output=True, text=True, check=True).stdout
    flash = sum(int(line.split()[1]) for line in sizes.splitlines()
                if line.split() and line.split()[0] in (".text", ".rodata", ".data",
                                                        ".ARM.exidx", ".init_array",
                                                        ".fini_array", ".tv_vectors"))
    assert flash - r0_planned_path.stat().st_size == FIRMWARE_FLASH[cpu]


@pytest.mark.parametrize("stem, files, namespace", [
    ("int", "int", "int_model"),            # a C++ keyword
    ("model.h", "model", "model"),          # a header name means its stem
    ("__x", "__x", "x_model"),              # reserved to the implementation
    ("3d-net", "3d-net", "m_3d_net")])
def test_export_c_names_are_c_identifiers_and_compile(tree, r0_planned_path, tmp_path,
                                                      stem, files, namespace):
    from tflm_vit.export_c import export_c
    export_c(r0_planned_path.read_bytes(), tmp_path / stem)
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{files}.cc", f"{files}.h"]
    assert f"namespace {namespace} {{" in (tmp_path / f"{files}.h").read_text()
    dl = tree / "tensorflow/lite/micro/tools/make/downloads"
    proc = subprocess.run(
        ["g++", "-fsyntax-only", "-std=c++17", "-DTF_LITE_STATIC_MEMORY", "-Wall", "-Werror",
         "-isystem", str(tree), "-isystem", str(dl / "flatbuffers/include"),
         "-isystem", str(dl / "gemmlowp"), f"-I{REPO / 'custom_ops/tflm'}",
         f"-I{REPO / 'custom_ops/kernels'}", str(tmp_path / f"{files}.cc")],
        capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_export_c_refuses_a_bytes_stem(r0_planned_path):
    from tflm_vit.export_c import ExportCError, export_c
    with pytest.raises(ExportCError, match="out_stem must be a path"):
        export_c(r0_planned_path.read_bytes(), b"model")


def test_export_c_refuses_an_op_nobody_provides(r0_planned_path, tmp_path):
    from tflite_micro.tensorflow.lite.micro.compression import model_editor
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    model = model_editor.read(r0_planned_path.read_bytes())
    op = model.subgraphs[0].operators[1]
    op.opcode, op.custom_code, op.opcode_index = schema.BuiltinOperator.CUSTOM, "ACME_OP", None
    bad = tmp_path / "acme.tflite"
    bad.write_bytes(bytes(model.build()))
    proc = _cli("export-c", bad, "-o", tmp_path / "model")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("tflm-vit export-c: error: op ACME_OP")
    assert "neither a TFLM builtin tflm-vit supports nor a tflm-vit op" in proc.stderr
    assert not (tmp_path / "model.h").exists()


@pytest.mark.parametrize("kernels", ["reference", "cmsis_nn"])
def test_cmake_target_builds_the_example_app(tree, r0_planned_path, tmp_path, kernels):
    # README, "Firmware with CMake": tflm_vit_ops against a TFLM library target; with
    # CMSIS-NN given, our DSP fast paths are compiled in (SMLAD in the linear kernel).
    build = qemu.build("cortex-m7", kernels)
    lib = build.bindir.parent / "lib" / "libtensorflow-microlite.a"
    tflm = tmp_path / "libtflm.a"
    shutil.copy(lib, tflm)
    ours = [p.stem + ".o" for p in (REPO / "custom_ops/kernels").glob("*.c")]
    ours += [p.stem + ".o" for p in (REPO / "custom_ops/tflm").glob("*.cc")]
    members = subprocess.run(["arm-none-eabi-ar", "t", str(tflm)], capture_output=True,
                             text=True, check=True).stdout.split()
    subprocess.run(["arm-none-eabi-ar", "d", str(tflm), *[m for m in ours if m in members]],
                   check=True)  # a TFLM library without our ops, as a user has
    assert _cli("export-c", r0_planned_path, "-o", tmp_path / "model").returncode == 0
    dl = tree / "tensorflow/lite/micro/tools/make/downloads"
    fw = REPO / "custom_ops/firmware"
    (tmp_path / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.18)
project(app C CXX)
add_library(tflm STATIC IMPORTED)
set_target_properties(tflm PROPERTIES IMPORTED_LOCATION {tflm}
  INTERFACE_INCLUDE_DIRECTORIES "{tree};{dl / 'flatbuffers/include'};{dl / 'gemmlowp'}")
set(TFLM_VIT_TFLM_TARGET tflm)
{f"set(TFLM_VIT_CMSIS_NN_DIR {dl / 'cmsis_nn'})" if kernels == "cmsis_nn" else ""}
add_subdirectory({REPO / 'custom_ops'} tflm_vit)
foreach(exe app dropin)
  set(main {fw / 'example/main.cc'})
  if(exe STREQUAL dropin)
    set(main {fw / 'example/dropin.cc'})
  endif()
  add_executable(${{exe}} ${{main}} {tmp_path / 'model.cc'} {fw / 'boards/mps2/board.cc'})
  target_include_directories(${{exe}} PRIVATE {tmp_path} {fw / 'boards'})
  target_compile_options(${{exe}} PRIVATE -fno-rtti -fno-exceptions --specs=rdimon.specs)
  target_link_libraries(${{exe}} PRIVATE tflm_vit_ops tflm)
  target_link_options(${{exe}} PRIVATE --specs=rdimon.specs -Wl,--gc-sections
    -Wl,--section-start=.tv_vectors=0x0 -Wl,--undefined=tv_vectors)
endforeach()
""")
    cmake = shutil.which("cmake", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                         os.environ.get("PATH", "")]))
    out = tmp_path / "out"
    for cmd in ([cmake, "-S", str(tmp_path), "-B", str(out),
                 f"-DCMAKE_TOOLCHAIN_FILE={fw / 'cmake/arm-none-eabi.cmake'}",
                 "-DTFLM_VIT_CPU=cortex-m7"],
                [cmake, "--build", str(out), "-j2"]):
        proc = subprocess.run(cmd, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    qemu.run(out / "app", "cortex-m7", marker="TFLM_VIT_EXAMPLE_PASS")
    # The README's drop-in: an app that includes only tflm_vit_ops.h for our ops.
    qemu.run(out / "dropin", "cortex-m7", marker="TFLM_VIT_DROPIN_PASS")
    (ops_lib,) = out.glob("tflm_vit/libtflm_vit_ops.a")
    disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", str(ops_lib)],
                                 capture_output=True, text=True, check=True).stdout
    linear = disassembly[disassembly.index("<tv_linear_row_s8>:"):]
    linear = linear[:linear.index("\n\n")]
    assert ("smlad" in linear) == (kernels == "cmsis_nn")


def test_cmake_target_without_tflm_is_a_clear_error(tmp_path):
    (tmp_path / "CMakeLists.txt").write_text(f"""
cmake_minimum_required(VERSION 3.18)
project(app C CXX)
add_subdirectory({REPO / 'custom_ops'} tflm_vit)
""")
    cmake = shutil.which("cmake", path=os.pathsep.join([os.path.dirname(sys.executable),
                                                         os.environ.get("PATH", "")]))
    proc = subprocess.run([cmake, "-S", str(tmp_path), "-B", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert "tflm-vit: set TFLM_VIT_TFLM_TARGET" in proc.stderr


def test_bazel_builds_and_tests_the_kernels(tmp_path):
    proc = subprocess.run(["bazel", f"--output_user_root={tmp_path / 'bazel'}", "test",
                           "//:tv_kernel_tests", "//:tv_vector_tests"], cwd=REPO,
                          capture_output=True, text=True, timeout=1500)
    try:
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        assert "1 test passes" in proc.stdout + proc.stderr or \
            "PASSED" in proc.stdout + proc.stderr
        from tflm_vit.twins.vectors import write_vectors
        vectors = tmp_path / "v.bin"
        n = write_vectors(vectors, cases_per_kernel=4)
        binary = subprocess.run(["bazel", f"--output_user_root={tmp_path / 'bazel'}", "info",
                                 "bazel-bin"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        out = subprocess.run([f"{binary}/tv_vector_tests", str(vectors)], capture_output=True,
                             text=True)
        assert out.returncode == 0 and f"TFLM_VIT_VECTORS_PASS {n}" in out.stdout
    finally:
        subprocess.run(["bazel", f"--output_user_root={tmp_path / 'bazel'}", "shutdown"],
                       cwd=REPO, capture_output=True)


def test_bazel_cmsis_nn_define_builds_the_kernels_on_cmsis_nn(tree, tmp_path):
    """`--define tflm_vit_cmsis_nn=true` compiles the kernels with CMSIS_NN against the
    workspace's @cmsis_nn (here the TFLM tree's download, as a user's workspace would
    give it); on the host (no DSP extension) they take the portable path and pass."""
    cmsis = tmp_path / "cmsis_nn"
    cmsis.mkdir()
    (cmsis / "Include").symlink_to(
        tree / "tensorflow/lite/micro/tools/make/downloads/cmsis_nn/Include")
    (cmsis / "WORKSPACE").write_text("")
    (cmsis / "BUILD").write_text('cc_library(name = "cmsis_nn", hdrs = glob(["Include/**/*.h"]),'
                                 ' includes = ["Include"], visibility = ["//visibility:public"])\n')
    bazel = ["bazel", f"--output_user_root={tmp_path / 'bazel'}"]
    flags = ["--define", "tflm_vit_cmsis_nn=true", f"--override_repository=cmsis_nn={cmsis}"]
    try:
        proc = subprocess.run([*bazel, "test", *flags, "//:tv_kernel_tests"], cwd=REPO,
                              capture_output=True, text=True, timeout=1500)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        actions = subprocess.run([*bazel, "aquery", *flags,
                                  'mnemonic("CppCompile", //:tv_kernels)'], cwd=REPO,
                                 capture_output=True, text=True, timeout=600).stdout
        assert "-DCMSIS_NN" in actions and "external/cmsis_nn/Include" in actions
        plain = subprocess.run([*bazel, "aquery", 'mnemonic("CppCompile", //:tv_kernels)'],
                               cwd=REPO, capture_output=True, text=True, timeout=600).stdout
        assert "CppCompile" in plain and "-DCMSIS_NN" not in plain
    finally:
        subprocess.run([*bazel, "shutdown"], cwd=REPO, capture_output=True)


def test_example_app_compiles_for_the_nucleo_f746zg(tree, r0_planned_path, tmp_path):
    # The hardware board layer: the example app, the generated model and the NUCLEO
    # layer compile for the STM32F746 (hard float; linking needs the STM32 project's
    # start-up code, which STM32CubeIDE generates).
    assert _cli("export-c", r0_planned_path, "-o", tmp_path / "model").returncode == 0
    dl = tree / "tensorflow/lite/micro/tools/make/downloads"
    fw = REPO / "custom_ops/firmware"
    for src in (fw / "example/main.cc", tmp_path / "model.cc",
                fw / "boards/nucleo_f746zg/board.cc"):
        proc = subprocess.run(
            ["arm-none-eabi-g++", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16",
             "-mfloat-abi=hard", "-std=c++17", "-O2", "-fno-rtti", "-fno-exceptions",
             "-DTF_LITE_STATIC_MEMORY", "-Wall", "-Wextra", "-Werror", "-isystem", str(tree),
             "-isystem", str(dl / "flatbuffers/include"), "-isystem", str(dl / "gemmlowp"),
             f"-I{tmp_path}", f"-I{fw / 'boards'}", f"-I{REPO / 'custom_ops/tflm'}",
             f"-I{REPO / 'custom_ops/kernels'}", "-c", str(src), "-o",
             str(tmp_path / (src.stem + ".o"))], capture_output=True, text=True)
        assert proc.returncode == 0, f"{src.name}:\n{proc.stderr[-3000:]}"


# --- instruction counting (tflm_vit/firmware/instructions.py) -------------------------------

@pytest.fixture(scope="module")
def small_planned(trained_supernet, digits):
    """The default space's smallest subnet, converted and planned (a fast trace)."""
    from tflm_vit.space import DEFAULT_SPACE
    rep = digits.x_train[:16].astype("float32")
    (m,) = [m for m in on_target.variants("small", trained_supernet,
                                           DEFAULT_SPACE.smallest(), rep)
            if m.variant == "planned"]
    return m


def _count(build, m, tmp_path):
    path, inp = tmp_path / "m.tflite", tmp_path / "in.bin"
    path.write_bytes(m.data)
    inp.write_bytes(m.image.tobytes())
    return instructions.count(build, path, inp, 1 << 16)


def test_instruction_counts_are_exact_per_op_and_repeatable(small_planned, tmp_path):
    from tflm_vit.tflite_model import parse_model
    fast = qemu.build("cortex-m7", "cmsis_nn")
    first, again = _count(fast, small_planned, tmp_path), _count(fast, small_planned, tmp_path)
    assert first.total == again.total and first.ops == again.ops  # deterministic
    assert [tag for tag, _ in first.ops] == [op.name for op in parse_model(small_planned.data).ops]
    assert all(n > 0 for _, n in first.ops)
    # Everything between the op markers is the ops'; the rest is TFLM's loop and the
    # profiler calls, a few dozen instructions per op.
    outside = first.total - sum(n for _, n in first.ops)
    assert 0 < outside < 100 * len(first.ops), outside
    assert sum(first.per_kind().values()) == sum(n for _, n in first.ops)
    assert sum(first.functions.values()) == first.total
    assert on_target.parse_output(first.output)[0] == on_target.wheel_output(small_planned)


def test_fast_paths_cost_fewer_instructions_than_the_portable_kernels(small_planned, tmp_path):
    # The same model, the same output, on the portable C (reference build) and on the DSP
    # fast paths (CMSIS-NN build): every matrix op of ours takes fewer instructions.
    naive = _count(qemu.build("cortex-m7", "reference"), small_planned, tmp_path)
    fast = _count(qemu.build("cortex-m7", "cmsis_nn"), small_planned, tmp_path)
    assert on_target.parse_output(naive.output)[0] == on_target.parse_output(fast.output)[0]
    for (tag, n), (_, f) in zip(naive.ops, fast.ops):
        if tag in ("TV_LINEAR", "TV_MLP", "TV_ATTENTION", "TV_PATCH_EMBED",
                   "TV_LOW_RANK_LINEAR"):
            assert f < n, (tag, f, n)


def test_counting_an_elf_without_markers_is_a_clear_error(small_planned, tmp_path):
    build = qemu.build("cortex-m7", "reference")
    # An ELF without the runner's markers (the vector tests) cannot be counted.
    path = tmp_path / "m.tflite"
    path.write_bytes(small_planned.data)
    with pytest.raises(qemu.FirmwareError, match="has no tv_mark_invoke_begin"):
        instructions.count(_VectorsAsRunner(build), path, path, 1 << 16)


class _VectorsAsRunner:
    """A build whose model runner is the vector-test ELF (which has no markers)."""

    def __init__(self, build):
        self.cpu, self.model_runner = build.cpu, build.vector_tests
