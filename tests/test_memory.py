"""The memory model, the planner and the offline plan, checked against the wheel:
predictions equal what TFLM records, planned models run bit-identically in exactly the
planned arena, R2 lands >= 3x below stock and at its lower bound, and bad plans, budgets
and arenas are refused with errors that name the problem."""

import dataclasses

import numpy as np
import pytest

from tflm_vit import runtime
from tflm_vit.cli import main
from tflm_vit.config import SubnetConfig
from tflm_vit.converters.convert import convert
from tflm_vit.errors import PlanError
from tflm_vit.export import export_tflite
from tflm_vit.memory import check_plan, plan_model, predict, read_plan
from tflm_vit.memory.greedy import Buffer, greedy_offsets
from tflm_vit.memory.offline_plan import METADATA_NAME, encode
from tflm_vit.memory import planner
from tflm_vit.memory.planner import plan_exact, plan_heuristic
from tflm_vit.memory.scratch import our_options
from tflm_vit.space import REFERENCE_CONFIGS, REFERENCE_SPACE
from tflm_vit.tflite_model import parse_model


@pytest.fixture(scope="module")
def models(exported_r0, trained_supernet, digits):
    """Stock and converted models: R0 (reference space) and three default-space subnets
    covering low rank, unfused GELU and several head counts."""
    out = {"R0 stock": exported_r0, "R0": convert(exported_r0, verify=False).model}
    net = trained_supernet
    configs = {
        "low rank": SubnetConfig(resolution=32, patch_size=8, embed_dim=48, depth=2,
                                 num_heads=[2, 4], mlp_ratio=[2.0, 1.0], rank_ratio=0.5),
        "largest": net.space.largest(),
        "smallest": net.space.smallest(),
    }
    for name, config in configs.items():
        stock = export_tflite(net, config, digits.x_train[:8])
        out[f"{name} stock"] = stock
        out[name] = convert(stock, verify=False).model
    out["low rank unfused"] = convert(out["low rank stock"], fuse_mlp=False, gelu="shift",
                                      verify=False).model
    return out


@pytest.fixture(scope="module")
def r2():
    from tflm_vit.supernet import ViTSupernet
    config = REFERENCE_CONFIGS["R2"]
    rep = np.random.default_rng(0).uniform(-1, 1, (2, 240, 240, 3)).astype(np.float32)
    stock = export_tflite(ViTSupernet(REFERENCE_SPACE), config, rep)
    return stock, convert(stock, verify=False).model


def _agree(model):
    p = predict(model)
    a = runtime.allocations(model)
    return (p.head, p.tail, p.total), (a.head, a.tail, a.total)


def test_memory_model_equals_the_wheel_on_stock_converted_and_planned(models):
    for name, model in models.items():
        predicted, measured = _agree(model)
        assert predicted == measured, name
        if "stock" not in name:
            planned = plan_model(model).model
            predicted, measured = _agree(planned)
            assert predicted == measured, f"{name} planned"


def test_planned_model_is_bit_identical_in_exactly_its_arena(models):
    for name in ("R0", "low rank unfused", "largest"):
        result = plan_model(models[name])
        assert read_plan(result.model) == result.plan.offsets
        i0, _ = runtime.make_interpreter(models[name])
        i1, _ = runtime.make_interpreter(result.model, arena_size=result.arena_size)
        shape = i0.get_input_details(0)["shape"]
        x = np.random.default_rng(3).integers(-128, 128, (3, *shape[1:]), dtype=np.int8)
        np.testing.assert_array_equal(runtime.invoke(i0, x), runtime.invoke(i1, x))
        assert result.after.total < result.before.total, name
    r0 = plan_model(models["R0"])
    assert runtime.fits(r0.model, r0.arena_size)
    assert not runtime.fits(r0.model, r0.arena_size - 16)


def test_r2_planned_fits_192000_bytes_at_its_lower_bound(r2):
    stock, converted = r2
    result = plan_model(converted)
    stock_arena = runtime.allocations(stock).total
    planned_arena = runtime.allocations(result.model).total
    assert planned_arena == result.after.total
    assert stock_arena >= 5 * planned_arena, (stock_arena, planned_arena)
    assert planned_arena <= 192_000
    assert planned_arena == result.after.lower_bound
    # The bound is set by op 0, the patch embedding writing over the 172,800-byte image.
    info = parse_model(converted)
    assert result.after.bound_op == 0 and info.ops[0].name == "TV_PATCH_EMBED"
    assert result.after.head_lower_bound == 172_800 + 1_200 + 160
    i0, _ = runtime.make_interpreter(converted)
    i1, _ = runtime.make_interpreter(result.model, arena_size=result.arena_size)
    x = np.random.default_rng(5).integers(-128, 128, (1, 240, 240, 3), dtype=np.int8)
    np.testing.assert_array_equal(runtime.invoke(i0, x), runtime.invoke(i1, x))
    # No BATCH_MATMUL copies in the tail: the converted model's tail is bookkeeping only.
    assert result.after.tail < 0.05 * runtime.allocations(stock).tail


def test_heuristic_is_never_below_the_bound_and_close_to_the_optimum(models):
    info = parse_model(models["R0"])
    heuristic, exact = plan_heuristic(info), plan_exact(info, time_limit_s=60)
    bound = predict(models["R0"]).head_lower_bound
    assert bound <= exact.head <= heuristic.head
    assert heuristic.head <= 1.05 * exact.head
    check_plan(info, exact.offsets)


def test_default_planner_runs_cp_sat_when_the_heuristic_is_above_the_bound(models,
                                                                          monkeypatch):
    info = parse_model(models["R0"])
    bound = predict(models["R0"]).head_lower_bound

    def stacked(lay, order):  # a valid but poor placement: every chain above the last
        offsets, top = [0] * len(lay.buffers), 0
        for g in order:
            for i in lay.groups[g]:
                offsets[i] = top + lay.disp[i]
            top = max(offsets[i] + lay.buffers[i].size for i in lay.groups[g])
        return offsets

    monkeypatch.setattr(planner, "_first_fit", stacked)
    poor = planner.plan_heuristic(info)
    assert poor.head > bound
    found = planner.plan(info)
    assert (found.method, found.exact, found.head) == ("cp-sat", "optimal", bound)
    check_plan(info, found.offsets)
    # Without CP-SAT, TFLM's own placement is the fallback: never worse than TFLM's.
    fallback = planner.plan(info, exact=False)
    assert fallback.method == "tflm" and fallback.head == planner.plan_tflm(info).head
    assert fallback.head < poor.head


def test_patch_embedding_overwrite_only_at_its_lead(models):
    """The low-rank model's stem has room (D 48 < P^2 C 192): the tokens start the
    op's output_lead before the image; one 16 bytes off is refused."""
    info = parse_model(models["low rank"])
    op = info.ops[0]
    lead = our_options(info, op)["output_lead"]
    assert op.name == "TV_PATCH_EMBED" and lead >= 0
    offsets = list(plan_model(models["low rank"]).plan.offsets)
    image, tokens = op.inputs[0], op.outputs[0]
    assert offsets[tokens] == offsets[image] - lead
    check_plan(info, offsets)
    for moved in (offsets[image] + 16, offsets[image] - 16):
        if moved < 0:
            continue
        bad = list(offsets)
        bad[image] = moved
        with pytest.raises(PlanError, match=rf"tensor {image} .* and tensor {tokens} .*|"
                                            rf"tensor {tokens} .* and tensor {image} .*"):
            check_plan(info, bad)


def test_greedy_reproduction_never_overlaps_live_buffers():
    rng = np.random.default_rng(0)
    for _ in range(50):
        bufs = []
        for _ in range(int(rng.integers(1, 30))):
            a = int(rng.integers(0, 20))
            bufs.append(Buffer(16 * int(rng.integers(1, 50)), a, a + int(rng.integers(0, 6))))
        offs = greedy_offsets(bufs)
        for i, a in enumerate(bufs):
            for j, b in enumerate(bufs[:i]):
                if a.overlaps_in_time(b):
                    assert offs[i] + a.size <= offs[j] or offs[j] + b.size <= offs[i]


def _with_raw_plan(model: bytes, blob: bytes) -> bytes:
    from tflm_vit.converters import model_io
    m = model_io.read(model)
    m.metadata[METADATA_NAME] = blob
    return model_io.build(m)


def test_unsafe_overlap_is_refused_naming_both_tensors(models):
    info = parse_model(models["R0"])
    offsets = list(plan_heuristic(info).offsets)
    planned = [t for t, o in enumerate(offsets) if o >= 0]
    # The graph input and the patch embedding's output are alive together.
    image, embed = info.inputs[0], info.ops[0].outputs[0]
    offsets[embed] = offsets[image]
    with pytest.raises(PlanError, match=r"tensor \d+ '.*' .* and tensor \d+ '.*' .* overlap"):
        check_plan(info, offsets)
    bad = _with_raw_plan(models["R0"], encode(offsets))
    for fn in (predict, plan_model):  # a plan read from a model is checked too
        with pytest.raises(PlanError, match="overlap"):
            fn(bad)
    misaligned = list(plan_heuristic(info).offsets)
    misaligned[planned[1]] += 4
    with pytest.raises(PlanError, match="not a multiple of 16"):
        check_plan(info, misaligned)
    const = next(t.index for t in info.tensors if t.is_constant)
    bogus = list(plan_heuristic(info).offsets)
    bogus[const] = 0
    with pytest.raises(PlanError, match="not planned by TFLM"):
        check_plan(info, bogus)


def test_corrupted_plan_metadata_is_refused(models):
    n = len(parse_model(models["R0"]).tensors)
    cases = {
        "holds 3 offsets": encode([-1, -1, -1]),
        "not a header": b"\x01\x00\x00",
        "buffer holds": encode([-1] * n)[:-4],
        "only -1 or a byte offset": encode([-7] + [-1] * (n - 1)),
    }
    for message, blob in cases.items():
        with pytest.raises(PlanError, match=message):
            read_plan(_with_raw_plan(models["R0"], blob))


def test_budget_and_arena_too_small_are_clear_errors(models):
    result = plan_model(models["R0"])
    with pytest.raises(PlanError, match=r"at the bound, so optimal\), over the budget of "
                                        r"10,000 bytes"):
        plan_model(models["R0"], budget=10_000)
    with pytest.raises(PlanError, match="positive"):
        plan_model(models["R0"], budget=0)
    with pytest.raises(runtime.ArenaTooSmallError, match="records"):
        runtime.make_interpreter(result.model, arena_size=result.arena_size - 16)


def test_dynamic_model_cannot_be_planned(models):
    info = parse_model(models["R0"])
    t = info.ops[0].outputs[0]
    info.tensors[t] = dataclasses.replace(info.tensors[t], shape_signature=(-1, 16, 64))
    with pytest.raises(PlanError, match=rf"tensor {t} .* dynamic shape"):
        plan_heuristic(info)


def test_cli_plan(models, tmp_path, capsys):
    src, dst = tmp_path / "in.tflite", tmp_path / "out.tflite"
    src.write_bytes(models["R0"])
    assert main(["plan", str(src), "-o", str(dst)]) == 0
    out = capsys.readouterr().out
    assert "lower bound" in out and read_plan(dst.read_bytes()) is not None
    assert main(["plan", str(src), "-o", str(dst), "--budget", "1000"]) == 2
    assert "budget of 1,000 bytes" in capsys.readouterr().err
