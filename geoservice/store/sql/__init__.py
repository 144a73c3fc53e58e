"""SQL files, loaded by name: migrations (``NNN_name.sql``) and named queries (``-- name: x`` blocks)."""
from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)


def migrations(backend: str) -> list[tuple[int, str, str]]:
    """``(version, filename, sql)`` of a backend's numbered migrations, in order."""
    folder = resources.files(__package__) / backend
    out = []
    for entry in folder.iterdir():
        name = entry.name
        if name.endswith(".sql") and name[:3].isdigit():
            out.append((int(name[:3]), name, entry.read_text(encoding="utf-8")))
    return sorted(out)


@functools.cache
def queries(backend: str) -> dict[str, str]:
    """Named statements from ``<backend>/queries.sql``."""
    text = (resources.files(__package__) / backend / "queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}
