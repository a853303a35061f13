"""SearchSpace: the choices a supernet covers; it samples, bounds and mutates configs.

The supernet's weight shapes follow the largest choice of every dimension, so the
space is the one object both the supernet and the search need.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import numpy as np

from tflm_vit.config import SubnetConfig
from tflm_vit.errors import ConfigError


def _choices(field: str, values: Sequence, cast, zero_ok: bool = False) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(field, f"must be a list of choices, got {values!r}")
    out = tuple(sorted({cast(v) for v in values}))
    if not out:
        raise ConfigError(field, "has no choices")
    if any(v < 0 or (v == 0 and not zero_ok) for v in out):
        raise ConfigError(field, f"choices must be {'>= 0' if zero_ok else 'positive'}, got "
                          f"{list(out)}")
    return out


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    resolution: Sequence[int]
    patch_size: Sequence[int]
    embed_dim: Sequence[int]
    depth: Sequence[int]
    num_heads: Sequence[int]
    mlp_ratio: Sequence[float]
    rank_ratio: Sequence[float] = (1.0,)
    in_channels: int = 3
    num_classes: int = 10
    max_tokens: int | None = None  # drop (resolution, patch) pairs with more tokens
    min_grid: int = 1  # drop (resolution, patch) pairs with fewer patches per side
    stem: Sequence[int] = (0,)  # convolutional stem channels (0: none)
    # Keep each token grid only at the largest resolution that reaches it (a downscaled
    # image with as many tokens costs the transformer the same and sees less).
    grid_at_largest_resolution: bool = False

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name in ("resolution", "patch_size", "embed_dim", "depth", "num_heads"):
            set_(name, _choices(name, getattr(self, name), int))
        for name in ("mlp_ratio", "rank_ratio"):
            set_(name, _choices(name, getattr(self, name), float))
        set_("stem", _choices("stem", self.stem, int, zero_ok=True))
        if max(self.rank_ratio) > 1.0:
            raise ConfigError("rank_ratio", f"choices must be <= 1, got {list(self.rank_ratio)}")
        for name in ("in_channels", "num_classes"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(name, "must be positive")
        if self.max_tokens is not None and int(self.max_tokens) <= 0:
            raise ConfigError("max_tokens", "must be positive")
        if int(self.min_grid) <= 0:
            raise ConfigError("min_grid", "must be positive")
        if not self.token_choices:
            raise ConfigError("patch_size", "no (resolution, patch_size) pair is valid: the "
                              "patch must divide the resolution within max_tokens")
        for d in self.embed_dim:
            if not self.heads_for(d):
                raise ConfigError("num_heads", f"no choice divides embed_dim {d}")

    # Structure -----------------------------------------------------------------------
    @property
    def token_choices(self) -> tuple[tuple[int, int], ...]:
        """Valid (resolution, patch_size) pairs: the token-count knob."""
        limit = self.max_tokens or float("inf")
        pairs = tuple((r, p) for r in self.resolution for p in self.patch_size
                      if r % p == 0 and (r // p) ** 2 <= limit and r // p >= self.min_grid)
        if not self.grid_at_largest_resolution:
            return pairs
        top = {}
        for r, p in pairs:
            top[r // p] = max(top.get(r // p, 0), r)
        return tuple((r, p) for r, p in pairs if top[r // p] == r)

    def heads_for(self, embed_dim: int) -> tuple[int, ...]:
        return tuple(h for h in self.num_heads if embed_dim % h == 0)

    @property
    def max_embed(self) -> int:
        return max(self.embed_dim)

    @property
    def max_depth(self) -> int:
        return max(self.depth)

    @property
    def max_hidden(self) -> int:
        return max(int(m * d) for m in self.mlp_ratio for d in self.embed_dim)

    @property
    def max_patch(self) -> int:
        return max(p for _, p in self.token_choices)

    @property
    def max_grid(self) -> int:
        return max(r // p for r, p in self.token_choices)

    @property
    def max_stem(self) -> int:
        return max(self.stem)

    @property
    def max_resolution(self) -> int:
        return max(r for r, _ in self.token_choices)

    def bounds(self) -> dict:
        """Smallest and largest choice of every dimension."""
        return {f: (min(getattr(self, f)), max(getattr(self, f)))
                for f in ("resolution", "patch_size", "embed_dim", "depth", "num_heads",
                          "mlp_ratio", "rank_ratio", "stem")}

    # Membership ----------------------------------------------------------------------
    def validate(self, config: SubnetConfig) -> SubnetConfig:
        """Raise ConfigError naming the first field outside this space."""
        if not isinstance(config, SubnetConfig):
            raise ConfigError("config", f"expected a SubnetConfig, got {type(config).__name__}")
        if (config.resolution, config.patch_size) not in self.token_choices:
            raise ConfigError("resolution", f"({config.resolution}, {config.patch_size}) is not "
                              f"a token choice of this space {list(self.token_choices)}")
        for name in ("embed_dim", "depth", "rank_ratio", "stem"):
            if getattr(config, name) not in getattr(self, name):
                raise ConfigError(name, f"{getattr(config, name)} is not one of "
                                  f"{list(getattr(self, name))}")
        for i, (h, m) in enumerate(zip(config.num_heads, config.mlp_ratio)):
            if h not in self.num_heads:
                raise ConfigError(f"num_heads[{i}]", f"{h} is not one of {list(self.num_heads)}")
            if m not in self.mlp_ratio:
                raise ConfigError(f"mlp_ratio[{i}]", f"{m} is not one of {list(self.mlp_ratio)}")
        return config

    # Sampling ------------------------------------------------------------------------
    def largest(self) -> SubnetConfig:
        d = self.max_embed
        r, p = max(self.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
        return SubnetConfig(r, p, d, self.max_depth, max(self.heads_for(d)),
                            max(self.mlp_ratio), max(self.rank_ratio), self.max_stem)

    def smallest(self) -> SubnetConfig:
        d = min(self.embed_dim)
        r, p = min(self.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
        return SubnetConfig(r, p, d, min(self.depth), min(self.heads_for(d)),
                            min(self.mlp_ratio), min(self.rank_ratio), min(self.stem))

    def sample(self, rng: np.random.Generator) -> SubnetConfig:
        r, p = self.token_choices[rng.integers(len(self.token_choices))]
        d = int(rng.choice(self.embed_dim))
        depth = int(rng.choice(self.depth))
        heads = self.heads_for(d)
        return SubnetConfig(
            int(r), int(p), d, depth,
            [int(rng.choice(heads)) for _ in range(depth)],
            [float(rng.choice(self.mlp_ratio)) for _ in range(depth)],
            float(rng.choice(self.rank_ratio)),
            # drawn only where the space has a choice, so spaces without one sample the
            # same configs they always did
            int(rng.choice(self.stem)) if len(self.stem) > 1 else self.stem[0],
        )

    def mutate(self, config: SubnetConfig, rng: np.random.Generator,
               layer_prob: float = 0.2, global_prob: float = 0.4) -> SubnetConfig:
        """AutoFormer-style mutation: global genes with global_prob, per-layer genes with
        layer_prob. The result is always inside the space."""
        self.validate(config)
        r, p = config.resolution, config.patch_size
        if rng.random() < global_prob:
            r, p = self.token_choices[rng.integers(len(self.token_choices))]
        d = int(rng.choice(self.embed_dim)) if rng.random() < global_prob else config.embed_dim
        depth = int(rng.choice(self.depth)) if rng.random() < global_prob else config.depth
        rank = (float(rng.choice(self.rank_ratio)) if rng.random() < global_prob
                else config.rank_ratio)
        stem = config.stem
        if len(self.stem) > 1 and rng.random() < global_prob:
            stem = int(rng.choice(self.stem))
        heads_ok = self.heads_for(d)
        heads, mlp = [], []
        for i in range(depth):
            h = config.num_heads[i] if i < config.depth else int(rng.choice(heads_ok))
            m = config.mlp_ratio[i] if i < config.depth else float(rng.choice(self.mlp_ratio))
            if h not in heads_ok or rng.random() < layer_prob:
                h = int(rng.choice(heads_ok))
            if rng.random() < layer_prob:
                m = float(rng.choice(self.mlp_ratio))
            heads.append(h)
            mlp.append(m)
        return SubnetConfig(int(r), int(p), d, depth, heads, mlp, rank, stem)

    # Shrinking -----------------------------------------------------------------------
    SHRINKABLE = ("stem", "mlp_ratio", "depth", "embed_dim", "tokens")  # ties: first first

    def shrink(self, config: SubnetConfig, dim: str) -> SubnetConfig | None:
        """`config` with `dim` one choice smaller (every layer's, for per-layer genes;
        tokens: the next smaller token count), or None when it is at its smallest."""
        self.validate(config)
        if dim == "tokens":
            # Strictly fewer tokens (another resolution/patch pair with as many tokens
            # saves nothing); among those, the most pixels.
            fewer = sorted((rp for rp in self.token_choices
                            if (rp[0] // rp[1]) ** 2 < config.num_tokens),
                           key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
            if not fewer:
                return None
            r, p = fewer[-1]
            return dataclasses.replace(config, resolution=r, patch_size=p)
        if dim == "stem":
            lower = [c for c in self.stem if c < config.stem]
            return None if not lower else dataclasses.replace(config, stem=lower[-1])
        if dim == "mlp_ratio":
            lower = [m for m in self.mlp_ratio if m < max(config.mlp_ratio)]
            return None if not lower else dataclasses.replace(
                config, mlp_ratio=[min(m, lower[-1]) for m in config.mlp_ratio])
        if dim == "depth":
            lower = [d for d in self.depth if d < config.depth]
            return None if not lower else dataclasses.replace(
                config, depth=lower[-1], num_heads=config.num_heads[:lower[-1]],
                mlp_ratio=config.mlp_ratio[:lower[-1]])
        if dim == "embed_dim":
            lower = [d for d in self.embed_dim if d < config.embed_dim]
            if not lower:
                return None
            d = lower[-1]
            heads = [h if d % h == 0 else max(self.heads_for(d)) for h in config.num_heads]
            return dataclasses.replace(config, embed_dim=d, num_heads=heads)
        raise ValueError(f"cannot shrink {dim!r}; one of {self.SHRINKABLE}")

    def position(self, config: SubnetConfig, dim: str) -> float:
        """Where `config` sits in `dim`'s choices: 0 the smallest, 1 the largest."""
        if dim == "tokens":
            values = sorted({(r // p) ** 2 for r, p in self.token_choices})
            v = config.num_tokens
        else:
            values = list(getattr(self, dim))
            v = max(config.mlp_ratio) if dim == "mlp_ratio" else getattr(config, dim)
        return values.index(v) / (len(values) - 1) if len(values) > 1 else 0.0

    def clipped(self, upper: SubnetConfig) -> "SearchSpace":
        """The subspace of configs no larger than `upper` in width, depth, MLP ratio and
        tokens (heads and rank ratios as they are): what a budget-aware supernet trains
        when `upper` is the largest subnet that fits the budgets."""
        self.validate(upper)
        return SearchSpace.from_dict({
            **self.to_dict(),
            "embed_dim": [d for d in self.embed_dim if d <= upper.embed_dim],
            "depth": [d for d in self.depth if d <= upper.depth],
            "mlp_ratio": [m for m in self.mlp_ratio if m <= max(upper.mlp_ratio)],
            "stem": [c for c in self.stem if c <= upper.stem],
            "max_tokens": upper.num_tokens})

    # Serialisation -------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v)
                for k, v in dataclasses.asdict(self).items()}

    @classmethod
    def from_dict(cls, d: dict) -> "SearchSpace":
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(unknown[0], "is not a SearchSpace field")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())


def space_for_data(resolution: int, channels: int, classes: int) -> "SearchSpace":
    """The default search space for images of `resolution` px: resolutions the image's
    own and downscaled to 3/4 and 1/2, each with every patch size that tiles it into a
    grid of 4 x 4 to 16 x 16 tokens, each grid kept only at the largest resolution that
    reaches it (28 px: 28/2 = 196 tokens, 28/4 = 49, 28/7 = 16; 21/3 and 14/2 would give
    49 tokens from a downscaled image for the same transformer, and lose to 28/4 at
    convergence: bench/results/token_resolution.md; coarser grids, 2 x 2 or 3 x 3
    patches of a whole image, win short trainings and lose at convergence:
    bench/results/recipe.md); width 32 to 128, depth 1 to 8,
    MLP ratio 1 to 4, low-rank ratio 0.25 to 1, and a convolutional stem of 0, 8 or 16
    channels (early convolutions: what lets a small ViT learn local features from little
    data, bench/results/recipe.md). The search's budgets, not this space,
    keep what it trains within what the board can run."""
    from tflm_vit.errors import DataError
    resolution = int(resolution)
    sizes = sorted({resolution, round(resolution * 3 / 4), resolution // 2} - {0})
    largest = {}  # tokens per side -> (resolution, patch), the largest resolution wins
    for r in sizes:
        for p in range(2, r // MIN_GRID + 1):
            if r % p == 0 and MIN_GRID <= r // p <= MAX_GRID:
                largest[r // p] = (r, p)
    pairs = sorted(largest.values())
    if not pairs:
        raise DataError(f"images of {resolution} px are smaller than every patch: the "
                        f"default space needs at least {2 * MIN_GRID} px to tile into "
                        f"{MIN_GRID} x {MIN_GRID} patches of 2 px")
    return SearchSpace(
        resolution=sorted({r for r, _ in pairs}), patch_size=sorted({p for _, p in pairs}),
        embed_dim=(32, 48, 64, 96, 128), depth=(1, 2, 3, 4, 6, 8), num_heads=(1, 2, 4),
        mlp_ratio=(1.0, 2.0, 3.0, 4.0), rank_ratio=(0.25, 0.5, 0.75, 1.0),
        in_channels=channels, num_classes=classes, max_tokens=MAX_GRID ** 2,
        min_grid=MIN_GRID, grid_at_largest_resolution=True,
        stem=(0, 8, 16))


MAX_GRID = 16  # tokens per side at most in the data-derived spaces (256 tokens)
MIN_GRID = 4  # and at least (16 tokens)


# The built-in default: small enough to train on scikit-learn's digits in minutes on
# two CPU cores, wide enough that the search has real choices.
DEFAULT_SPACE = SearchSpace(
    resolution=(16, 24, 32), patch_size=(4, 8), embed_dim=(32, 48, 64), depth=(1, 2, 3),
    num_heads=(1, 2, 4), mlp_ratio=(1.0, 2.0), rank_ratio=(0.5, 0.75, 1.0),
)

# A space holding the reference configs R0, R1, R2 (untrained; for memory figures).
REFERENCE_SPACE = SearchSpace(
    resolution=(32, 224, 240), patch_size=(4, 16), embed_dim=(64, 160, 192), depth=(2, 4, 6),
    num_heads=(2, 3, 4), mlp_ratio=(2.0, 4.0), rank_ratio=(0.5, 1.0), max_tokens=225,
)

REFERENCE_CONFIGS = {
    "R0": SubnetConfig(32, 4, 64, 2, 2, 2.0),
    "R1": SubnetConfig(224, 16, 192, 4, 3, 4.0),
    "R2": SubnetConfig(240, 16, 160, 6, 4, 2.0),
}
