"""SQL files, loaded by name: migrations (``NNN_name.sql``) and named statements (``-- name: x`` blocks).

A named statement may include another as ``{name}`` (shared column lists, conditions); :func:`statement`
expands them, and ``choices`` picks which fragment fills a ``{placeholder}`` (a query variant chosen per request).
A backend's statement may also include a fragment of ``common/queries.sql`` (a rule both stores apply, written
once): common fragments write parameters ``:name`` and are rewritten to the backend's style (:func:`pyformat` for
PostGIS, whose files write ``%(name)s``; SQLite reads ``:name`` itself).
"""
from __future__ import annotations

import functools
import re
from collections.abc import Callable
from importlib import resources

_NAME = re.compile(r"^--\s*name:\s*(\w+)\s*$", re.MULTILINE)
_FRAGMENT = re.compile(r"\{(\w+)\}")
_PARAM = re.compile(r"(?<![:\w]):(\w+)")  # ":name", not a "::type" cast
COMMON = "common"


def pyformat(sql: str) -> str:
    """``:name`` parameters written ``%(name)s`` (psycopg's style)."""
    return _PARAM.sub(r"%(\1)s", sql)


_STYLES: dict[str, Callable[[str], str]] = {"postgis": pyformat}


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
def common() -> dict[str, str]:
    """The statements of ``common/queries.sql`` with their fragments expanded, parameters still ``:name``."""
    raw = queries(COMMON)

    def expand(text: str) -> str:
        return _FRAGMENT.sub(lambda m: expand(raw[m.group(1)]) if m.group(1) in raw else m.group(0), text)

    return {name: expand(text) for name, text in raw.items()}


@functools.cache
def _expanded(backend: str, name: str, choices: tuple[tuple[str, str], ...]) -> str:
    named = queries(backend)
    shared = common()
    style = _STYLES.get(backend, str)
    chosen = dict(choices)

    def fill(m: re.Match[str]) -> str:
        key = chosen.get(m.group(1), m.group(1))
        if key in named:
            return _FRAGMENT.sub(fill, named[key])
        return style(shared[key]) if key in shared else m.group(0)

    return _FRAGMENT.sub(fill, named[name])


def statement(backend: str, name: str, **choices: str) -> str:
    """Named statement ``name`` of ``backend`` with every ``{fragment}`` expanded (``choices`` maps a
    ``{placeholder}`` to the fragment that fills it)."""
    return _expanded(backend, name, tuple(sorted(choices.items())))
