"""SubnetConfig: one ViT architecture drawn from the supernet.

A SubnetConfig is plain data (JSON round-trips through `to_dict` / `from_dict`)
and validates itself on construction: a bad value raises `ConfigError` naming
the field. Whether it lies inside a given supernet is `SearchSpace.validate`.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, Sequence

from tflm_vit.errors import ConfigError

# rank_ratio == 1.0 means "no factorisation": the layer is exported as one dense
# matrix, because a full-rank factorisation never saves memory or parameters.
DENSE_RANK_RATIO = 1.0


def _as_int(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int,)) and not (
        hasattr(value, "__index__")
    ):
        raise ConfigError(field, f"must be an integer, got {value!r}")
    return int(value)


def _as_float(field: str, value: Any) -> float:
    if isinstance(value, bool):
        raise ConfigError(field, f"must be a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ConfigError(field, f"must be a number, got {value!r}") from None


def _per_layer(field: str, value: Any, depth: int, cast) -> tuple:
    """A scalar applies to every layer; a sequence must have one entry per layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != depth:
            raise ConfigError(field, f"has {len(value)} entries but depth is {depth}")
        return tuple(cast(f"{field}[{i}]", v) for i, v in enumerate(value))
    return tuple(cast(field, value) for _ in range(depth))


def low_rank(ratio: float, n_in: int, n_out: int) -> int:
    """Rank of W ~ U.V for a linear layer: ratio x min(in, out), at least 1."""
    return max(1, int(ratio * min(n_in, n_out)))


@dataclasses.dataclass(frozen=True)
class SubnetConfig:
    """One subnet: token count (resolution / patch), width, depth, heads, MLP, rank, and
    an optional convolutional stem (early convolutions: a 3x3 convolution with ReLU at full
    resolution, whose feature map the patch embedding then reads).

    num_heads and mlp_ratio are per layer (AutoFormer); a scalar is broadcast.
    rank_ratio factorises the MLP linears; 1.0 keeps them dense.
    """

    resolution: int
    patch_size: int
    embed_dim: int
    depth: int
    num_heads: Sequence[int]
    mlp_ratio: Sequence[float]
    rank_ratio: float = DENSE_RANK_RATIO
    stem: int = 0  # channels of a 3x3 convolution + ReLU before the patch embedding; 0: none

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 (frozen dataclass)
        for name in ("resolution", "patch_size", "embed_dim", "depth"):
            v = _as_int(name, getattr(self, name))
            if v <= 0:
                raise ConfigError(name, f"must be positive, got {v}")
            set_(name, v)
        if self.resolution % self.patch_size:
            raise ConfigError(
                "patch_size",
                f"{self.patch_size} does not divide resolution {self.resolution}",
            )
        heads = _per_layer("num_heads", self.num_heads, self.depth, _as_int)
        for i, h in enumerate(heads):
            if h <= 0:
                raise ConfigError(f"num_heads[{i}]", f"must be positive, got {h}")
            if self.embed_dim % h:
                raise ConfigError(
                    f"num_heads[{i}]", f"{h} does not divide embed_dim {self.embed_dim}"
                )
        set_("num_heads", heads)
        ratios = _per_layer("mlp_ratio", self.mlp_ratio, self.depth, _as_float)
        for i, r in enumerate(ratios):
            if not r > 0 or int(r * self.embed_dim) < 1:
                raise ConfigError(f"mlp_ratio[{i}]", f"must give a hidden width >= 1, got {r}")
        set_("mlp_ratio", ratios)
        stem = _as_int("stem", self.stem)
        if stem < 0:
            raise ConfigError("stem", f"must be >= 0 channels (0: no stem), got {stem}")
        set_("stem", stem)
        rank = _as_float("rank_ratio", self.rank_ratio)
        if not 0.0 < rank <= 1.0:
            raise ConfigError("rank_ratio", f"must be in (0, 1], got {rank}")
        set_("rank_ratio", rank)

    # Derived sizes -----------------------------------------------------------------
    @property
    def grid(self) -> int:
        """Patches per image side."""
        return self.resolution // self.patch_size

    @property
    def num_tokens(self) -> int:
        return self.grid * self.grid

    def hidden_dim(self, layer: int) -> int:
        return int(self.mlp_ratio[layer] * self.embed_dim)

    def mlp_rank(self, layer: int) -> int | None:
        """Rank of both MLP linears of a layer, or None when they stay dense."""
        if self.rank_ratio >= DENSE_RANK_RATIO:
            return None
        return low_rank(self.rank_ratio, self.embed_dim, self.hidden_dim(layer))

    # Serialisation -----------------------------------------------------------------
    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["num_heads"] = list(self.num_heads)
        d["mlp_ratio"] = list(self.mlp_ratio)
        if not self.stem:  # configs without a stem read as they always have
            del d["stem"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SubnetConfig":
        if not isinstance(d, dict):
            raise ConfigError("SubnetConfig", f"expected a mapping, got {type(d).__name__}")
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - fields)
        if unknown:
            raise ConfigError(unknown[0], "is not a SubnetConfig field")
        missing = [f.name for f in dataclasses.fields(cls)  # in declaration order
                   if f.name not in d and f.default is dataclasses.MISSING]
        if missing:
            raise ConfigError(missing[0], "is missing")
        return cls(**d)

    def to_json(self) -> str:
        return json.dumps(self.to_dict())

    @classmethod
    def from_json(cls, text: str) -> "SubnetConfig":
        try:
            return cls.from_dict(json.loads(text))
        except json.JSONDecodeError as e:
            raise ConfigError("SubnetConfig", f"not valid JSON: {e}") from None

    def short(self) -> str:
        """Compact human-readable form used in tables and logs."""
        heads = self.num_heads[0] if len(set(self.num_heads)) == 1 else list(self.num_heads)
        mlp = self.mlp_ratio[0] if len(set(self.mlp_ratio)) == 1 else list(self.mlp_ratio)
        stem = f" stem{self.stem}" if self.stem else ""
        return (f"{self.resolution}/{self.patch_size}{stem} d{self.embed_dim} L{self.depth} "
                f"h{heads} mlp{mlp} r{self.rank_ratio:g}")
