"""MCUFormer's search-space evolution over its two memory knobs: the low-rank ratio and
the token count (resolution / patch size).

A candidate space is the base space with one rank ratio and one token choice; its subnets
vary in everything else (width, depth, heads, MLP ratio). Its score is

    score = accuracy term + fit_weight * fraction of its sampled subnets within budget

with the accuracy term the mean of its largest subnet's validation top-1 and its sampled
subnets' mean top-1 (MCUFormer's `sample_average_acc`; the released code calls it without
defining it, papers.md 1.5). Each round trains every current point's supernet for
`epochs_per_round` epochs from its own last weights (or from the nearest evaluated point's,
for a new point), scores it, fits two planes (error = 1 - accuracy term, violation =
1 - fit fraction) over the k nearest evaluated points in grid-index coordinates, and moves
each knob by floor(|slope| / threshold) grid steps *against* each slope, summed over the
two planes: the direction that lowers error and violation. (The released code adds the
slope, which climbs both; papers.md 1.5.) It stops when no point moves or after `rounds`.

Every supernet is a ViTSupernet of the base space trained only on its candidate's subnets
up to the largest one that fits the budgets (budget-aware: CostModel.largest_within; a
candidate none of whose subnets fits is scored without training), so any point's weights
can seed any other. Every round is logged to `log.json` in the
work folder with the weights beside it; a rerun resumes after the last finished round and,
being seeded, ends where an uninterrupted run would.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os

import numpy as np

from tflm_vit.search.budgets import Budgets
from tflm_vit.config import SubnetConfig
from tflm_vit.search.costs import CostModel
from tflm_vit.space import SearchSpace
from tflm_vit.supernet.model import seeded_supernet


@dataclasses.dataclass(frozen=True)
class EvolutionOfSpaceSettings:
    initial_points: int = 3  # MCUFormer: 5 of its 60-point grid
    rounds: int = 2  # MCUFormer: --step-num 10
    epochs_per_round: float = 0.5  # supernet training per point per round
    samples: int = 8  # subnets sampled per point for the accuracy and fit terms
    fit_weight: float = 1.0  # weight of the fit fraction in the score
    neighbours: int = 5  # k of the local plane fit (MCUFormer: 5)
    error_threshold: float = 0.01  # error slope per grid step that earns one step
    violation_threshold: float = 0.1  # violation slope per grid step that earns one step


@dataclasses.dataclass(frozen=True)
class Point:
    """Grid indices: rank = index into base.rank_ratio, tokens = into token_grid(base)."""
    rank: int
    tokens: int


def token_grid(space: SearchSpace) -> list[tuple[int, int]]:
    """The base space's (resolution, patch) choices by token count, then resolution."""
    return sorted(space.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))


def candidate_space(base: SearchSpace, p: Point) -> SearchSpace:
    r, patch = token_grid(base)[p.tokens]
    return SearchSpace.from_dict({**base.to_dict(), "resolution": [r], "patch_size": [patch],
                                  "rank_ratio": [base.rank_ratio[p.rank]], "max_tokens": None})


def describe(base: SearchSpace, p: Point) -> str:
    r, patch = token_grid(base)[p.tokens]
    return f"rank {base.rank_ratio[p.rank]:g}, {(r // patch) ** 2} tokens ({r}/{patch})"


@dataclasses.dataclass
class PointScore:
    point: Point
    accuracy_term: float
    largest_accuracy: float
    sampled_accuracy: float
    fit_fraction: float
    score: float

    def to_dict(self) -> dict:
        return {**dataclasses.asdict(self), "point": dataclasses.asdict(self.point)}

    @classmethod
    def from_dict(cls, d: dict) -> "PointScore":
        fields = {f.name for f in dataclasses.fields(cls)}  # a log row holds more
        return cls(**{k: v for k, v in d.items() if k in fields and k != "point"},
                   point=Point(**d["point"]))


def fit_plane(xy: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Least-squares z = a x + b y + c; returns (a, b). With too few distinct points in a
    direction the slope there is 0 (lstsq's minimum-norm solution)."""
    a = np.column_stack([xy, np.ones(len(xy))])
    return np.linalg.lstsq(a, z, rcond=None)[0][:2]


def step(point: Point, scores: dict[Point, PointScore], s: EvolutionOfSpaceSettings,
         grid_shape: tuple[int, int]) -> Point:
    """MCUFormer's move of one point from the planes over its k nearest evaluated points."""
    pts = list(scores)
    here = np.array([point.rank, point.tokens], float)
    order = sorted(range(len(pts)), key=lambda i: (
        float(np.sum((np.array([pts[i].rank, pts[i].tokens]) - here) ** 2)), i))
    near = [pts[i] for i in order[:s.neighbours]]
    xy = np.array([[p.rank, p.tokens] for p in near], float)
    error = fit_plane(xy, np.array([1.0 - scores[p].accuracy_term for p in near]))
    violation = fit_plane(xy, np.array([1.0 - scores[p].fit_fraction for p in near]))
    moves = [0, 0]
    for slopes, threshold in ((error, s.error_threshold), (violation, s.violation_threshold)):
        for j in range(2):
            moves[j] -= int(math.copysign(math.floor(abs(slopes[j]) / threshold), slopes[j]))
    return Point(int(np.clip(point.rank + moves[0], 0, grid_shape[0] - 1)),
                 int(np.clip(point.tokens + moves[1], 0, grid_shape[1] - 1)))


def load_weights(net, path: str) -> None:
    saved = np.load(path)
    for i, v in enumerate(net.variables):
        v.assign(saved[f"v{i}"])


def save_weights(net, path: str) -> None:
    tmp = path + ".tmp.npz"
    np.savez(tmp, **{f"v{i}": v.numpy() for i, v in enumerate(net.variables)})
    os.replace(tmp, path)  # an interruption never leaves half a file


def train_point_job(base_json: str, space_json: str, point: dict, round_index: int,
                    seed: int, settings: dict, load_from: str | None, save_to: str, data,
                    val, teacher=None) -> dict:
    """One candidate space's round, as a job a worker runs: train its supernet (on
    `space_json`, the candidate space clipped to the largest subnet that fits the
    budgets) from `load_from` (None: fresh), save it to `save_to`, and evaluate its
    largest and its sampled subnets on the validation split. The driver turns the result
    into a score."""
    import tensorflow as tf

    from tflm_vit.train import TrainConfig, evaluate_float, train_supernet
    tf.config.experimental.enable_op_determinism()  # the same on any worker
    base = SearchSpace.from_dict(json.loads(base_json))
    space = SearchSpace.from_dict(json.loads(space_json))
    p, s = Point(**point), EvolutionOfSpaceSettings(**settings)
    net = seeded_supernet(base, seed)
    if load_from is not None:
        load_weights(net, load_from)
    cfg = TrainConfig.epochs(s.epochs_per_round, len(data.y_train),
                             seed=seed * 1000 + round_index)
    train_supernet(space, data, cfg, supernet=net, progress=False, teacher=teacher)
    save_weights(net, save_to)
    rng = np.random.default_rng([seed, round_index, p.rank, p.tokens])
    sampled = [space.sample(rng) for _ in range(s.samples)]
    x, y = val.x_test, val.y_test
    return {"largest": evaluate_float(net, space.largest(), x, y),
            "sampled": [c.to_json() for c in sampled],
            "accs": [evaluate_float(net, c, x, y) for c in sampled], "steps": cfg.steps}


class SpaceEvolution:
    """The loop, with its state in `workdir` (log.json and one weights file per point)."""

    def __init__(self, base: SearchSpace, data, val, budgets: Budgets, costs: CostModel,
                 workdir: str, settings: EvolutionOfSpaceSettings = EvolutionOfSpaceSettings(),
                 seed: int = 0, progress=None, executor=None, teacher=None):
        from tflm_vit.search.parallel import Local
        self.executor = executor or Local()
        self.base, self.data, self.val, self.budgets = base, data, val, budgets
        self.costs, self.workdir, self.s, self.seed = costs, workdir, settings, seed
        self.teacher = teacher
        self.progress = progress or (lambda text: None)
        self.grid_shape = (len(base.rank_ratio), len(token_grid(base)))
        os.makedirs(workdir, exist_ok=True)
        self.log_path = os.path.join(workdir, "log.json")
        self.log = self._load_log()

    # State ---------------------------------------------------------------------------
    def _load_log(self) -> dict:
        settings = {"settings": dataclasses.asdict(self.s), "seed": self.seed,
                    "base": self.base.to_dict(), "budgets": self.budgets.to_dict(),
                    "teacher": None if self.teacher is None else self.teacher.fingerprint}
        if os.path.exists(self.log_path):
            with open(self.log_path) as f:
                log = json.load(f)
            if {k: log.get(k) for k in settings} != json.loads(json.dumps(settings)):
                from tflm_vit.errors import ConfigError
                raise ConfigError("workdir", f"{self.workdir} holds a space evolution with "
                                  "other settings, seed, space or budgets; use a new folder")
            return log
        return {**settings, "rounds": []}

    def _save_log(self) -> None:
        tmp = self.log_path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.log, f, indent=1)
        os.replace(tmp, self.log_path)  # a crash never leaves half a log

    def weights_path(self, p: Point, round_index: int) -> str:
        """Each round writes its own weights file, so the jobs of one round (in parallel
        or not) read only what earlier rounds wrote."""
        return os.path.join(self.workdir, f"supernet_r{p.rank}_t{p.tokens}_round{round_index}.npz")

    def latest_weights(self, p: Point, before_round: int) -> str | None:
        for i in reversed(range(before_round)):
            if os.path.exists(self.weights_path(p, i)):
                return self.weights_path(p, i)
        return None

    def trained_space(self, p: Point) -> SearchSpace | None:
        """The space point p's supernet trains: its candidate space clipped to the largest
        subnet that fits the budgets (budget-aware: no step goes to subnets the board
        cannot run); None when not even its smallest subnet fits."""
        from tflm_vit.errors import BudgetError
        candidate = candidate_space(self.base, p)
        try:
            return candidate.clipped(self.costs.largest_within(self.budgets, candidate))
        except BudgetError:
            return None

    def load_net(self, p: Point):
        """The supernet of point p as its last round left it."""
        net = seeded_supernet(self.base, self.seed)
        path = self.latest_weights(p, len(self.log["rounds"]))
        if path is None:
            raise FileNotFoundError(f"{self.workdir}: no weights for {describe(self.base, p)}")
        load_weights(net, path)
        return net

    # The loop ------------------------------------------------------------------------
    def initial_points(self) -> list[Point]:
        """`initial_points` points drawn at random among those with a subnet that fits."""
        from tflm_vit.errors import BudgetError
        rng = np.random.default_rng(self.seed)
        grid = [Point(r, t) for r in range(self.grid_shape[0]) for t in range(self.grid_shape[1])]
        picked = []
        for i in rng.permutation(len(grid)):
            try:
                self.costs.check_reachable(self.budgets, candidate_space(self.base, grid[i]))
            except BudgetError:
                continue
            picked.append(grid[i])
            if len(picked) == self.s.initial_points:
                break
        return sorted(picked, key=lambda p: (p.rank, p.tokens))

    def scores(self) -> dict[Point, PointScore]:
        """Every point evaluated so far, with its latest score (from the log)."""
        return {Point(**r["point"]): PointScore.from_dict(r)
                for rnd in self.log["rounds"] for r in rnd["scores"]}

    def run(self) -> PointScore:
        scores = self.scores()
        points = ([Point(**p) for p in self.log["rounds"][-1]["next"]] if self.log["rounds"]
                  else self.initial_points())
        while len(self.log["rounds"]) < self.s.rounds and not self._converged():
            i = len(self.log["rounds"])
            self.progress(f"space round {i + 1}/{self.s.rounds}: training "
                          + "; ".join(describe(self.base, p) for p in points))
            rows = self._train_round(points, i, scores)
            round_scores = [PointScore.from_dict(r) for r in rows]
            scores.update({sc.point: sc for sc in round_scores})
            moved = [step(p, scores, self.s, self.grid_shape) for p in points]
            nxt = list(dict.fromkeys(moved))  # points that land together merge
            self.log["rounds"].append({"round": i + 1, "scores": rows,
                                       "next": [dataclasses.asdict(p) for p in nxt],
                                       "moves": [{"from": dataclasses.asdict(p),
                                                  "to": dataclasses.asdict(q)}
                                                 for p, q in zip(points, moved)]})
            self._save_log()
            points = nxt
        return self.best()

    @property
    def cost(self) -> dict:
        """What the space evolution spent: supernet training steps and subnets evaluated
        on the validation split (each trained point's largest plus its samples, every
        round)."""
        scores = [sc for r in self.log["rounds"] for sc in r["scores"]]
        return {"training_steps": sum(sc.get("steps", 0) for sc in scores),
                "evaluations": sum(1 + self.s.samples for sc in scores if sc.get("steps"))}

    def _train_round(self, points: list[Point], i: int, scores: dict) -> list[dict]:
        """Trains and scores the round's points as independent jobs on the executor; a
        new point starts from the nearest evaluated point's weights. A point none of
        whose subnets fits is scored without training (nothing in it can ship)."""
        data, val = self.executor.share(self.data), self.executor.share(self.val)
        teacher = None if self.teacher is None else self.executor.share(self.teacher)
        spaces = {p: self.trained_space(p) for p in points}
        trainable = [p for p in points if spaces[p] is not None]
        jobs = []
        for p in trainable:
            start = self.latest_weights(p, i)
            if start is None and scores:
                start = self.latest_weights(self._nearest(p, scores), i)
            jobs.append((self.base.to_json(), spaces[p].to_json(), dataclasses.asdict(p), i,
                         self.seed, dataclasses.asdict(self.s), start,
                         self.weights_path(p, i), data, val, teacher))
        results = dict(zip(trainable, self.executor.map(train_point_job, jobs, gpu=True)))
        sampled = {p: [SubnetConfig.from_json(c) for c in r["sampled"]]
                   for p, r in results.items()}
        costs = self.costs.costs([c for p in trainable for c in sampled[p]])  # one batch
        out = []
        for p in points:
            if p not in results:
                out.append({**PointScore(p, 0.0, 0.0, 0.0, 0.0, 0.0).to_dict(), "steps": 0})
                continue
            r = results[p]
            fit = float(np.mean([self.budgets.fits(costs.pop(0)) for _ in sampled[p]]))
            mean = float(np.mean(r["accs"]))
            term = (r["largest"] + mean) / 2
            out.append({**PointScore(p, term, r["largest"], mean, fit,
                                     term + self.s.fit_weight * fit).to_dict(),
                        "steps": r["steps"], "trained_space": json.loads(spaces[p].to_json())})
        return out

    def _converged(self) -> bool:
        return bool(self.log["rounds"]) and all(m["from"] == m["to"]
                                                for m in self.log["rounds"][-1]["moves"])

    def _nearest(self, p: Point, scores: dict) -> Point | None:
        if not scores:
            return None
        return min(scores, key=lambda q: ((q.rank - p.rank) ** 2 + (q.tokens - p.tokens) ** 2,
                                          q.rank, q.tokens))

    def best(self) -> PointScore:
        """The highest-scoring point of the latest score of every point evaluated."""
        return max(self.scores().values(), key=lambda sc: (sc.score, sc.accuracy_term))
