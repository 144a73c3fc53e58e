"""SQL files, loaded by name: migrations (``NNN_name.sql``) and named statements (``-- name: x`` blocks).

A named statement may include another as ``{name}`` (shared column lists, conditions); :func:`statement`
expands them, and ``choices`` picks which fragment fills a ``{placeholder}`` (a query variant chosen per request).
"""
from __future__ import annotations

import functools
import re
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_FRAGMENT = re.compile(r"\{(\w+)\}")


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
    """Named statements from ``<backend>/queries.sql``, as written."""
    text = (resources.files(__package__) / backend / "queries.sql").read_text(encoding="utf-8")
    parts = _NAME.split(text)
    return {parts[i]: parts[i + 1].strip() for i in range(1, len(parts), 2)}


@functools.cache
def _expanded(backend: str, name: str, choices: tuple[tuple[str, str], ...]) -> str:
    named = queries(backend)
    chosen = dict(choices)

    def fill(m: re.Match[str]) -> str:
        key = chosen.get(m.group(1), m.group(1))
        return _FRAGMENT.sub(fill, named[key]) if key in named else m.group(0)

    return _FRAGMENT.sub(fill, named[name])


def statement(backend: str, name: str, **choices: str) -> str:
    """Named statement ``name`` of ``backend`` with every ``{fragment}`` expanded (``choices`` maps a
    ``{placeholder}`` to the fragment that fills it)."""
    return _expanded(backend, name, tuple(sorted(choices.items())))
