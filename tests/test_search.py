"""The search: budgets, the measured cost model, MCUFormer's step rule, the evolutionary
search's constraint handling and reproducibility, and the CLI's errors."""

import dataclasses
import json
import os

import numpy as np
import pytest

from tflm_vit.cli import main
from tflm_vit.config import SubnetConfig
from tflm_vit.errors import BudgetError
from tflm_vit.search.budgets import Budgets, Cost
from tflm_vit.search.costs import CostModel
from tflm_vit.search.evolution import EvolutionSettings, cross, evolve, pareto
from tflm_vit.search.space_evolution import (EvolutionOfSpaceSettings, Point, PointScore,
                                             candidate_space, step, token_grid)
from tflm_vit.space import DEFAULT_SPACE


def test_budgets_take_units_and_refuse_garbage():
    b = Budgets.parse("320KB", "1MB", "20M")
    assert (b.sram, b.flash, b.latency) == (327680, 1 << 20, 20_000_000)
    assert Budgets.parse(latency="1500k").latency == 1_500_000
    with pytest.raises(BudgetError, match="--sram: 'lots' is not a byte size"):
        Budgets.parse("lots")
    with pytest.raises(BudgetError, match="--latency '-3' is not an instruction count"):
        Budgets.parse(latency="-3")
    cost = Cost(sram=400_000, flash=100, latency=1, macs=1)
    assert not b.fits(cost) and b.excess(cost)["sram"] == pytest.approx(400_000 / 327680 - 1)


@pytest.fixture(scope="module")
def costs():
    return CostModel(DEFAULT_SPACE, "cortex-m")


def test_cost_model_is_the_deployed_models_own(costs, trained_supernet, digits):
    """The search costs a shape-only supernet; the trained one it deploys has the same
    arena and flash to the byte."""
    from tflm_vit import pipeline
    for config in (DEFAULT_SPACE.smallest(), DEFAULT_SPACE.sample(np.random.default_rng(3))):
        d = pipeline.deploy(trained_supernet, config, digits.x_train[:8], verify=False,
                            target="cortex-m")
        c = costs.cost(config)
        assert (c.sram, c.flash) == (d.arena_size, d.flash), config.short()
        assert c.macs > 0 and c.latency > c.macs // 4


def test_impossible_budget_names_the_least_achievable(costs):
    floor, config = costs.floor()
    with pytest.raises(BudgetError) as e:
        costs.check_reachable(Budgets(sram=floor.sram - 1))
    assert str(e.value) == (f"--sram {floor.sram - 1:,} bytes cannot be met: the smallest "
                            f"subnet ({config.short()}) needs {floor.sram:,} bytes, the least "
                            "in the search space")
    costs.check_reachable(Budgets(sram=floor.sram, flash=floor.flash))  # exactly enough


def _score(p, err, violation):
    return PointScore(p, 1 - err, 1 - err, 1 - err, 1 - violation, 0.0)


def test_space_step_moves_against_error_and_violation():
    """Error falls with rank (up is better) and violation rises with tokens (down fits
    better): the point moves up in rank and down in tokens; the released code's sign
    would do the opposite."""
    s = EvolutionOfSpaceSettings(error_threshold=0.01, violation_threshold=0.1)
    scores = {}
    for r in range(3):
        for t in range(4):
            p = Point(r, t)
            scores[p] = _score(p, err=0.30 - 0.025 * r, violation=0.1 + 0.15 * t)
    moved = step(Point(1, 2), {p: scores[p] for p in
                               [Point(1, 2), Point(0, 2), Point(2, 2), Point(1, 1), Point(1, 3)]},
                 s, (3, 4))
    assert moved == Point(2, 1)  # +floor(0.025/0.01)=2 rank steps, clamped; -1 token step
    flat = {p: _score(p, 0.2, 0.5) for p in scores}
    assert step(Point(1, 1), flat, s, (3, 4)) == Point(1, 1)  # no trend: converged


def test_candidate_space_is_one_rank_and_one_token_choice():
    grid = token_grid(DEFAULT_SPACE)
    assert [(r // p) ** 2 for r, p in grid] == sorted((r // p) ** 2 for r, p in grid)
    sp = candidate_space(DEFAULT_SPACE, Point(0, len(grid) - 1))
    assert sp.rank_ratio == (DEFAULT_SPACE.rank_ratio[0],)
    assert sp.token_choices == (grid[-1],)
    assert sp.embed_dim == DEFAULT_SPACE.embed_dim and sp.depth == DEFAULT_SPACE.depth


def test_crossover_stays_in_the_space():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = DEFAULT_SPACE.sample(rng), DEFAULT_SPACE.sample(rng)
        DEFAULT_SPACE.validate(cross(a, b, rng))


class _AnalyticCosts(CostModel):
    """Costs from a formula (the search logic under test, not the measurement)."""

    def __init__(self):
        super().__init__(DEFAULT_SPACE)

    def costs(self, configs):
        # SRAM as in a transformer: the widest layer's activations, not the depth's sum.
        return [Cost(c.num_tokens * c.embed_dim * 4 + int(max(c.mlp_ratio) * c.embed_dim),
                     1000 * c.depth * c.embed_dim, 1, 1) for c in configs]


def _accuracy_fn(calls):
    def acc(c: SubnetConfig) -> float:
        calls.append(c)
        return (c.depth * c.embed_dim + sum(c.mlp_ratio) + c.num_tokens) / 1000
    return acc


def test_evolution_costs_before_it_evaluates_and_replays_exactly():
    budgets = Budgets(sram=4_000, flash=100_000)
    settings = EvolutionSettings(population=8, generations=4)
    calls = []
    r1 = evolve(DEFAULT_SPACE, budgets, _AnalyticCosts(), _accuracy_fn(calls), settings, seed=5)
    assert calls and all(budgets.fits(_AnalyticCosts().cost(c)) for c in calls)
    assert len(calls) == len({c.to_json() for c in calls}) == r1.evaluations
    assert r1.best.feasible and budgets.fits(r1.best.cost)
    assert r1.best.accuracy == max(c.accuracy for c in r1.evaluated if c.feasible)
    front = pareto(r1.evaluated)
    assert [c.cost.sram for c in front] == sorted(c.cost.sram for c in front)
    r2 = evolve(DEFAULT_SPACE, budgets, _AnalyticCosts(), _accuracy_fn([]), settings, seed=5)
    assert r2.best.config == r1.best.config
    assert [c.config for c in r2.evaluated] == [c.config for c in r1.evaluated]


def _error(capsys, *argv) -> str:
    """The error line: the last on stderr (progress lines may come before it), and no
    traceback."""
    assert main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err and not any("Traceback" in line for line in err), err
    assert all(not line.startswith("tflm-vit") for line in err[:-1]), err
    return err[-1]


def test_cli_search_bad_budgets(capsys, tmp_path):
    out = tmp_path / "s"
    assert "--sram: '12 apples' is not a byte size" in _error(
        capsys, "search", "--sram", "12 apples", "--out", out)
    assert _error(capsys, "search", "--out", out) == (
        "tflm-vit search: error: give a board (--board, e.g. stm32f746) or at least one budget: "
        "--sram, --flash or --latency")
    line = _error(capsys, "search", "--sram", "1KB", "--no-ray", "--out", out)  # no Ray start
    assert line.startswith("tflm-vit search: error: --sram 1,024 bytes cannot be met: the "
                           "smallest subnet (")
    assert not out.exists()  # nothing left behind


def test_cli_search_fashion_mnist_missing(capsys, tmp_path, monkeypatch):
    from tflm_vit import data
    monkeypatch.setattr(data, "FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    line = _error(capsys, "search", "--sram", "64KB", "--data", "fashion-mnist",
                  "--out", tmp_path / "s")
    assert "Fashion-MNIST is not installed" in line and "dataset-fashion-mnist" in line


def test_search_end_to_end_on_ray_then_in_process_then_resumed(digits, tmp_path,
                                                               monkeypatch):
    """A tiny search on digits, its jobs on a local Ray with two workers: the chosen model
    fits its budget in TFLM. The same search in this process (no Ray) picks the same
    subnet (its weights differ by float rounding only: a worker's TensorFlow sums in
    another order; 5e-5 at most here, so the accuracies agree), and a rerun of the first
    in its own folder (a resume with everything done) ends with the same model, bit for
    bit. The Ray run is given a relative work folder (Ray workers have a working directory
    of their own: `make demo`'s relative --out failed there), and a job's error reaches
    the caller as the job's own exception, one line, not Ray's wrapper with the worker's
    traceback."""
    import ray

    from tflm_vit.units import parse_bytes

    from tflm_vit.search.parallel import Local, OnRay
    from tflm_vit.search.run import SearchSettings, run_search
    settings = SearchSettings(
        EvolutionOfSpaceSettings(initial_points=2, rounds=1, epochs_per_round=1, samples=2),
        EvolutionSettings(population=4, generations=2), supernet_epochs=0.5,
        finetune_epochs=1, val_images=100, teacher=False)
    small = dataclasses.replace(digits, x_test=digits.x_test[:50], y_test=digits.y_test[:50])
    budgets = Budgets(sram=20_000, target="wheel")
    assert not ray.is_initialized()  # the CLI stops the Ray it starts
    monkeypatch.chdir(tmp_path)
    with OnRay(workers=2) as on_ray:
        assert on_ray.workers == 2
        r1 = run_search(DEFAULT_SPACE, small, budgets, "a", settings, seed=1,
                        executor=on_ray)
        with pytest.raises(ValueError) as error:
            on_ray.map(parse_bytes, [("lots",)])
        assert type(error.value) is ValueError and "\n" not in str(error.value)
    assert not ray.is_initialized()
    assert on_ray.empty and not os.path.exists(on_ray.empty)  # its temp folder is gone
    assert r1.deployment.arena_size <= 20_000
    assert r1.accuracy.arena_measured <= r1.deployment.arena_size
    log = json.loads((tmp_path / "a" / "spaces" / "log.json").read_text())
    assert len(log["rounds"]) == 1 and len(log["rounds"][0]["scores"]) == 2
    # the cost the baselines get: both points' round (an epoch of the 1,293 training
    # images in batches of 64) and the chosen space's training (half an epoch)
    assert r1.search_cost["training_steps"] == 2 * 20 + 10
    assert r1.training.epochs == 1 and r1.quantisation["images"] > 0
    r2 = run_search(DEFAULT_SPACE, small, budgets, str(tmp_path / "b"), settings, seed=1,
                    executor=Local())
    assert r2.config == r1.config and r2.val_accuracy == r1.val_accuracy
    assert abs(r2.accuracy.top1 - r1.accuracy.top1) <= 0.04  # 2 of 50 test images
    assert r2.deployment.arena_size == r1.deployment.arena_size
    r3 = run_search(DEFAULT_SPACE, small, budgets, str(tmp_path / "a"), settings, seed=1)
    assert r3.config == r1.config and r3.deployment.model == r1.deployment.model
    assert r3.accuracy == r1.accuracy


def test_cnn_baseline_takes_the_most_macs_that_fit_and_measures_in_tflm(digits, monkeypatch):
    """MCUNet's MobileNetV2-like CNN: the member with the most MACs whose arena, recorded
    by TFLM, fits; the trained model's arena is the shape-only member's (weights do not
    change it); a budget no member meets is a BudgetError naming it."""
    from tflm_vit.search import cnn_baseline as cb
    monkeypatch.setattr(cb, "RESOLUTIONS", (16,))
    monkeypatch.setattr(cb, "WIDTHS", (4, 8))
    monkeypatch.setattr(cb, "EXPANSIONS", (2,))
    cache: dict = {}
    small, big = (cb.measure_member(cb.CnnConfig(16, w, 2), 3, 10) for w in (4, 8))
    assert small["arena"] < big["arena"] and small["macs"] < big["macs"]
    budget = Budgets(sram=(small["arena"] + big["arena"]) // 2, target="wheel")
    assert cb.choose(budget, 3, 10, cache) == cb.CnnConfig(16, 4, 2)
    assert cb.choose(Budgets(sram=big["arena"], target="wheel"), 3, 10, cache).width == 8
    with pytest.raises(BudgetError, match="no MobileNetV2-like member fits"):
        cb.choose(Budgets(sram=small["arena"] - 16, target="wheel"), 3, 10, cache)
    from tflm_vit.data import validation_split
    from tflm_vit.recipe import Recipe
    train, val = validation_split(digits, 0.1, 0)
    result = cb.train_and_measure(cb.CnnConfig(16, 4, 2), train, val, digits.x_test,
                                  digits.y_test, 1, Recipe(batch_size=64), seed=0)
    assert result["measured_arena"] == small["arena"] and result["macs"] == small["macs"]
    assert 0.0 <= result["top1"] <= 1.0


def test_baseline_spaces_and_an_infeasible_largest_space_before_training():
    """Each baseline's space, on formula costs (SRAM grows with tokens x width): random
    searches the base space; AutoFormer the dense space with the most tokens at which a
    subnet fits; TinyNAS the space whose fitting samples have the most MACs; the largest
    space is refused (BudgetError) when nothing in it fits, before any training."""
    from tflm_vit.search.baselines import choose_space

    class Macs(_AnalyticCosts):
        def costs(self, configs):
            return [dataclasses.replace(c, macs=c.sram) for c in super().costs(configs)]

    costs = Macs()
    tight = Budgets(sram=128 * 16 + 32)  # the smallest subnet fits with <= 16 tokens
    assert choose_space("random", DEFAULT_SPACE, tight, costs, 4, 0) == DEFAULT_SPACE
    dense = choose_space("autoformer", DEFAULT_SPACE, tight, costs, 4, 0)
    assert dense.rank_ratio == (1.0,) and list(dense.token_choices) == [(32, 8)]  # 16 tokens
    tiny = choose_space("tinynas", DEFAULT_SPACE, tight, costs, 8, 0)
    assert max(r // p for r, p in tiny.token_choices) ** 2 <= 16
    with pytest.raises(BudgetError, match="smallest subnet"):
        choose_space("largest_space", DEFAULT_SPACE, tight, costs, 4, 0)
    largest = choose_space("largest_space", DEFAULT_SPACE, Budgets(sram=100_000), costs, 4, 0)
    assert largest.rank_ratio == (1.0,) and list(largest.token_choices) == [(32, 4)]


def test_two_baselines_with_one_space_and_search_have_one_key(digits, tmp_path):
    """At a budget where AutoFormer's dense space with the most tokens is also the largest
    space, the two baselines' run keys, decided before any training, are one, and each
    run on its own ends with the same model: so the benchmark (bench/search.py) runs the
    second no more. Random search over the whole space has another key."""
    from tflm_vit.search.baselines import baseline_key, run_baseline
    from tflm_vit.search.run import SearchSettings
    settings = SearchSettings(
        EvolutionOfSpaceSettings(initial_points=2, rounds=1, epochs_per_round=1, samples=2),
        EvolutionSettings(population=4, generations=1), finetune_epochs=1, val_images=100,
        teacher=False)
    small = dataclasses.replace(digits, x_test=digits.x_test[:50], y_test=digits.y_test[:50])
    budgets = Budgets(sram=100_000, target="wheel")
    cache = str(tmp_path / "costs.jsonl")

    def key(method):
        return baseline_key(method, DEFAULT_SPACE, small, budgets, 10, 4, cache, settings, 1)

    def run(method):
        return run_baseline(method, DEFAULT_SPACE, small, budgets, str(tmp_path / method),
                            10, 4, settings, 1, cost_cache=cache)
    assert key("autoformer") == key("largest_space") != key("random")
    first, alone = run("autoformer"), run("largest_space")
    assert first.key == alone.key == key("autoformer")
    assert alone.space == first.space
    assert alone.evolution.best.config == first.evolution.best.config
    assert alone.deployment.model == first.deployment.model
    assert alone.accuracy == first.accuracy


def test_space_for_data_tiles_the_image_and_grows_to_mcu_sizes():
    from tflm_vit.errors import DataError
    from tflm_vit.space import space_for_data
    space = space_for_data(28, 1, 10)
    tokens = {(r, p): (r // p) ** 2 for r, p in space.token_choices}
    assert tokens[(28, 4)] == 49 and tokens[(28, 7)] == 16 and tokens[(28, 2)] == 196
    assert (14, 2) not in tokens and (21, 3) not in tokens  # 49 tokens, downscaled
    for size in (24, 32, 48, 96):  # each grid once, at the largest resolution reaching it
        grids = [r // p for r, p in space_for_data(size, 3, 10).token_choices]
        assert len(grids) == len(set(grids)), size
    assert (24, 4) in space_for_data(32, 3, 10).token_choices  # a downscaled grid of its own
    assert (18, 3) not in space_for_data(24, 3, 10).token_choices  # 24/4 has its 6 x 6
    assert all(4 <= r // p <= 16 for r, p in tokens)  # 16 to 256 tokens
    assert max(space.embed_dim) >= 128 and max(space.depth) >= 8
    assert max(space.mlp_ratio) >= 4 and min(space.rank_ratio) <= 0.25
    assert 0 in space.stem and max(space.stem) > 0
    with pytest.raises(DataError, match="smaller than every patch"):
        space_for_data(3, 1, 10)


def test_space_shrinks_one_dimension_at_a_time_and_clips():
    from tflm_vit.space import space_for_data
    space = space_for_data(28, 1, 10)
    big = space.largest()
    assert big.stem == 16 and big.num_tokens == 196
    smaller = space.shrink(big, "depth")
    assert smaller.depth == 6 and len(smaller.num_heads) == 6
    assert space.shrink(big, "tokens").num_tokens == 49
    assert space.shrink(space.smallest(), "embed_dim") is None
    clipped = space.clipped(SubnetConfig(28, 4, 64, 4, 2, 2.0, 1.0, 8))
    assert clipped.largest().embed_dim == 64 and clipped.largest().depth == 4
    assert max(clipped.stem) == 8 and max(r // p for r, p in clipped.token_choices) ** 2 == 49
    for _ in range(50):  # every sample of the clipped space is in the base space
        space.validate(clipped.sample(np.random.default_rng(_)))


def test_largest_within_budget_is_the_largest_that_fits():
    costs = _AnalyticCosts()
    budgets = Budgets(sram=2_000)
    best = costs.largest_within(budgets, DEFAULT_SPACE)
    assert budgets.fits(costs.cost(best))
    assert costs.cost(DEFAULT_SPACE.largest()).sram > 2_000  # it had to shrink
    assert best.depth == max(DEFAULT_SPACE.depth)  # depth costs no SRAM here: kept


def test_boards_give_budgets_and_an_unknown_board_lists_the_known(capsys, tmp_path):
    from tflm_vit.search.boards import APP_RESERVE, BOARDS, FIRMWARE_FLASH, board
    f746 = board("STM32F746")
    b = f746.budgets()
    assert b.sram == 320 * 1024 - APP_RESERVE and b.cpu == "cortex-m7"
    assert b.flash == 1024 * 1024 - FIRMWARE_FLASH["cortex-m7"]
    assert b.latency == int(f746.latency_ms * 216_000) and b.target == "cortex-m-cmsis-nn"
    assert f746.budgets(sram=100_000).sram == 100_000  # a flag overrides the board
    assert {"stm32f427", "stm32f746", "stm32h743"} <= set(BOARDS)
    assert sum(x.sram <= 128 * 1024 for x in BOARDS.values()) >= 2  # two smaller parts
    line = _error(capsys, "search", "--board", "esp32", "--out", tmp_path / "s")
    assert "--board 'esp32' is not a known board; known: stm32f401" in line
    assert "stm32h743 (STM32H743" in line
    assert not (tmp_path / "s").exists()
    line = _error(capsys, "search", "--board", "stm32f746", "--cpu", "cortex-m4",
                  "--out", tmp_path / "s")
    assert "board stm32f746 has a cortex-m7" in line


def test_cli_search_refuses_zero_finetune_epochs_and_a_teacher_that_is_not(capsys,
                                                                            tmp_path):
    assert "--finetune-epochs must be positive, got 0" in _error(
        capsys, "search", "--sram", "64KB", "--finetune-epochs", "0", "--out", tmp_path / "s")
    assert "--finetune-minutes must be >= 0, got -1" in _error(
        capsys, "search", "--sram", "64KB", "--finetune-minutes", "-1", "--out", tmp_path / "s")
    assert "not a teacher folder" in _error(
        capsys, "search", "--sram", "64KB", "--teacher", tmp_path, "--out", tmp_path / "s")


def test_a_torn_cache_line_is_dropped_and_a_bad_one_named(tmp_path):
    from tflm_vit.errors import DataError
    from tflm_vit.search.jsonlines import JsonLines
    path = tmp_path / "costs.jsonl"
    cache = JsonLines(str(path), "t")
    cache.add("a", 1)
    cache.add("b", 2)
    with open(path, "a") as f:
        f.write('{"tag": "t", "key": "c", "val')  # a kill during an append
    again = JsonLines(str(path), "t")
    assert again.values == {"a": 1, "b": 2} and again.dropped.startswith('{"tag"')
    again.add("c", 3)
    assert JsonLines(str(path), "t").values == {"a": 1, "b": 2, "c": 3}
    path.write_text('{"tag": "t", "key": "a", "value": 1}\ngarbage\n'
                    '{"tag": "t", "key": "b", "value": 2}\n')
    with pytest.raises(DataError, match="costs.jsonl: line 2 is not a cache row"):
        JsonLines(str(path), "t")


def test_a_work_folder_in_use_is_refused_naming_the_process(tmp_path):
    import os

    from tflm_vit.search.lock import FolderInUseError, work_folder_lock
    with work_folder_lock(str(tmp_path)):
        with pytest.raises(FolderInUseError, match=f"in use by process {os.getpid()}"):
            with work_folder_lock(str(tmp_path)):
                pass
    with work_folder_lock(str(tmp_path)):  # released when its holder is done
        pass


def test_an_unreachable_ray_cluster_is_one_line_not_a_hang(capsys, tmp_path):
    import time
    t0 = time.monotonic()
    line = _error(capsys, "search", "--sram", "64KB", "--ray-address", "127.0.0.1:1",
                  "--ray-timeout", "2", "--out", tmp_path / "s")
    assert "--ray-address 127.0.0.1:1: no Ray cluster answers there within 2 s" in line
    assert time.monotonic() - t0 < 60 and not (tmp_path / "s").exists()


def _sigint_as_from_a_terminal():
    """A shell starts background jobs with SIGINT ignored (POSIX), and Python then keeps
    it ignored; a user at a terminal has it delivered, as the child gets it here."""
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_an_interrupted_search_keeps_its_work_and_says_how_to_resume(tmp_path):
    """SIGINT (Ctrl-C) or SIGTERM once the search has written work: exit status 130, one
    line saying how to resume, no traceback, the work folder kept (a rerun resumes from
    it); interrupted before any work, the folder it created is gone."""
    import signal
    import subprocess
    import sys
    import time
    # SIGTERM on Ray: ray.init installs a handler of its own that aborts the driver.
    for sig, where in ((signal.SIGINT, ["--no-ray"]), (signal.SIGTERM, [])):
        out = tmp_path / f"s{int(sig)}"
        proc = subprocess.Popen([sys.executable, "-P", "-m", "tflm_vit.cli", "search",
                                 "--quick", "--sram", "16KB", *where, "--out", str(out)],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd="/", preexec_fn=_sigint_as_from_a_terminal)
        deadline = time.monotonic() + 300
        while not (out / "costs.jsonl").exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 130, err[-2000:]
        assert "Traceback" not in err
        assert err.strip().splitlines()[-1] == (
            f"tflm-vit search: interrupted; the work in {out} is kept: run the same command "
            "again to resume")
        assert (out / "costs.jsonl").exists()
