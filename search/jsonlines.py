"""A dict kept as a JSON-lines file: each entry is appended as it is added, so a search
interrupted at any point keeps what it measured; rows of another tag (another target, or
another candidate space's weights) are ignored on loading. A torn last line (what a kill
during an append leaves) is dropped, and cut from the file so the next append starts on a
line of its own; a bad line anywhere else is an error naming the file and line."""

from __future__ import annotations

import json
import os


class JsonLines:
    def __init__(self, path: str | None, tag: str):
        """path None: in memory only."""
        self.path, self.tag, self.values = path, tag, {}
        self.dropped = None  # the torn last line, if one was dropped
        if path and os.path.exists(path):
            with open(path, "rb") as f:
                raw = f.read()
            lines = raw.split(b"\n")
            good = 0  # bytes of whole, parsed lines
            for i, line in enumerate(lines):
                if not line.strip():
                    good += len(line) + 1
                    continue
                try:
                    row = json.loads(line)
                    key, value = row["key"], row["value"]
                except (ValueError, KeyError, TypeError):
                    if i == len(lines) - 1 or all(not rest.strip() for rest in lines[i + 1:]):
                        self.dropped = line.decode(errors="replace")
                        break
                    from tflm_vit.errors import DataError
                    raise DataError(f"{path}: line {i + 1} is not a cache row ({line[:60]!r}); "
                                    "remove the file to measure again") from None
                if row.get("tag") == tag:
                    self.values[key] = value
                good += len(line) + 1
            if self.dropped is not None:
                with open(path, "r+b") as f:
                    f.truncate(min(good, len(raw)))
            elif raw and not raw.endswith(b"\n"):  # whole, but cut before its newline
                with open(path, "ab") as f:
                    f.write(b"\n")

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str):
        return self.values[key]

    def add(self, key: str, value) -> None:
        self.values[key] = value
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps({"tag": self.tag, "key": key, "value": value}) + "\n")
