"""TFLM's GreedyMemoryPlanner, reproduced decision for decision, so the arena head of
any model (with or without an offline plan) is predicted without running TFLM.

What TFLM does (greedy_memory_planner.cc): buffers with an offline offset go first, in
the order they were added, at exactly that offset; the others follow sorted by size,
largest first (a stable sort, so equal sizes keep their order of addition); each is put
at the lowest offset where it fits in a gap between buffers already placed that are
alive at the same time. The head is the largest offset + size.
"""

from __future__ import annotations

import bisect
import dataclasses

ONLINE = -1  # kOnlinePlannedBuffer


@dataclasses.dataclass(frozen=True)
class Buffer:
    """One planned buffer: size already rounded up to 16, alive in scopes first..last."""

    size: int
    first: int
    last: int
    offline_offset: int = ONLINE
    name: str = ""

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return not (self.first > other.last or other.first > self.last)


def greedy_offsets(buffers: list[Buffer]) -> list[int]:
    """The offset TFLM gives each buffer, in the order given."""
    if not buffers:
        return []
    offline = [i for i, b in enumerate(buffers) if b.offline_offset != ONLINE]
    online = [i for i, b in enumerate(buffers) if b.offline_offset == ONLINE]
    # TFLM fills its online list from the back, so it holds them in reverse order of
    # addition before its stable bubble sort (descending size).
    online = sorted(reversed(online), key=lambda i: -buffers[i].size)
    order = offline + online
    offsets = [0] * len(buffers)
    placed: list[tuple[int, int]] = []  # (offset, buffer index), kept sorted by offset
    for n, i in enumerate(order):
        b = buffers[i]
        if b.offline_offset != ONLINE:
            offset = b.offline_offset
        elif n == 0:
            offset = 0
        else:
            offset = 0
            for other_offset, j in placed:
                other = buffers[j]
                if not b.overlaps_in_time(other):
                    continue
                if other_offset - offset >= b.size:
                    break  # the gap before this live buffer is big enough
                offset = max(offset, other_offset + other.size)
        offsets[i] = offset
        _insert_sorted(placed, offset, i)
    return offsets


def _insert_sorted(placed: list, offset: int, index: int) -> None:
    # TFLM inserts a new entry after every entry whose offset is <= its own.
    placed.insert(bisect.bisect_right([o for o, _ in placed], offset), (offset, index))


def head_size(buffers: list[Buffer], offsets: list[int]) -> int:
    return max((o + b.size for o, b in zip(offsets, buffers)), default=0)
