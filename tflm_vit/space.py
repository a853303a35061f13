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


def _choices(field: str, values: Sequence, cast) -> tuple:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ConfigError(field, f"must be a list of choices, got {values!r}")
    out = tuple(sorted({cast(v) for v in values}))
    if not out:
        raise ConfigError(field, "has no choices")
    if any(v <= 0 for v in out):
        raise ConfigError(field, f"choices must be positive, got {list(out)}")
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

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for name in ("resolution", "patch_size", "embed_dim", "depth", "num_heads"):
            set_(name, _choices(name, getattr(self, name), int))
        for name in ("mlp_ratio", "rank_ratio"):
            set_(name, _choices(name, getattr(self, name), float))
        if max(self.rank_ratio) > 1.0:
            raise ConfigError("rank_ratio", f"choices must be <= 1, got {list(self.rank_ratio)}")
        for name in ("in_channels", "num_classes"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(name, "must be positive")
        if self.max_tokens is not None and int(self.max_tokens) <= 0:
            raise ConfigError("max_tokens", "must be positive")
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
        return tuple((r, p) for r in self.resolution for p in self.patch_size
                     if r % p == 0 and (r // p) ** 2 <= limit)

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
    def max_resolution(self) -> int:
        return max(r for r, _ in self.token_choices)

    def bounds(self) -> dict:
        """Smallest and largest choice of every dimension."""
        return {f: (min(getattr(self, f)), max(getattr(self, f)))
                for f in ("resolution", "patch_size", "embed_dim", "depth", "num_heads",
                          "mlp_ratio", "rank_ratio")}

    # Membership ----------------------------------------------------------------------
    def validate(self, config: SubnetConfig) -> SubnetConfig:
        """Raise ConfigError naming the first field outside this space."""
        if not isinstance(config, SubnetConfig):
            raise ConfigError("config", f"expected a SubnetConfig, got {type(config).__name__}")
        if (config.resolution, config.patch_size) not in self.token_choices:
            raise ConfigError("resolution", f"({config.resolution}, {config.patch_size}) is not "
                              f"a token choice of this space {list(self.token_choices)}")
        for name in ("embed_dim", "depth", "rank_ratio"):
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
                            max(self.mlp_ratio), max(self.rank_ratio))

    def smallest(self) -> SubnetConfig:
        d = min(self.embed_dim)
        r, p = min(self.token_choices, key=lambda rp: ((rp[0] // rp[1]) ** 2, rp[0]))
        return SubnetConfig(r, p, d, min(self.depth), min(self.heads_for(d)),
                            min(self.mlp_ratio), min(self.rank_ratio))

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
        return SubnetConfig(int(r), int(p), d, depth, heads, mlp, rank)

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
