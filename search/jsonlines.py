"""A dict kept as a JSON-lines file: each entry is appended as it is added, so a search
interrupted at any point keeps what it measured; rows of another tag (another target, or
another candidate space's weights) are ignored on loading."""

from __future__ import annotations

import json
import os


class JsonLines:
    def __init__(self, path: str | None, tag: str):
        """path None: in memory only."""
        self.path, self.tag, self.values = path, tag, {}
        if path and os.path.exists(path):
            with open(path) as f:
                for line in f:
                    row = json.loads(line)
                    if row["tag"] == tag:
                        self.values[row["key"]] = row["value"]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def __getitem__(self, key: str):
        return self.values[key]

    def add(self, key: str, value) -> None:
        self.values[key] = value
        if self.path:
            with open(self.path, "a") as f:
                f.write(json.dumps({"tag": self.tag, "key": key, "value": value}) + "\n")
