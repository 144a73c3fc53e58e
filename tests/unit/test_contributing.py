"""CONTRIBUTING.md's module map is the tree: every module of the package and of tools/ is listed, with its job,
and nothing listed is gone."""
from __future__ import annotations

import re

from tests.support import ROOT


def _listed() -> set[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    section = text.split("## Module map", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^- `([\w/]+\.py)` — \S", section, flags=re.M))


def _tree() -> set[str]:
    out = set()
    for top in ("geoservice", "tools"):
        for path in (ROOT / top).rglob("*.py"):
            if "__pycache__" not in path.parts:
                out.add(path.relative_to(ROOT).as_posix())
    return out


def test_the_module_map_lists_every_module_and_only_those() -> None:
    listed, tree = _listed(), _tree()
    assert len(listed) > 50, "the module map was not found in CONTRIBUTING.md"
    assert not tree - listed, f"modules missing from CONTRIBUTING.md's module map: {sorted(tree - listed)}"
    assert not listed - tree, f"CONTRIBUTING.md lists modules that do not exist: {sorted(listed - tree)}"
