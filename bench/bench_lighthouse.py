"""The couriers' page (``/``) as Lighthouse scores it: mobile preset, Debian's Chromium, the service as shipped.

Starts ``geoservice serve`` (granian) on a fresh embedded store in a temporary folder (the bundled demo layers load
by default, map tiles from the default OpenStreetMap server), runs Lighthouse from npm against ``/`` once, and
writes the scores, CLS, LCP, TBT and FCP, with the machine (cores, load, Chromium and Lighthouse versions) and the
date, as one section of ``bench/results_lighthouse.md``. A section is named by ``--label`` (``before``,
``after``, ...): running again with the same label replaces it, other sections are kept.

Lighthouse's performance score comes from simulated throttling (a mid-range phone on a slow 4G link, Lantern's
model over the trace), so the machine's load still moves it: the file says the load average at the start.

Run: ``.venv/bin/python bench/bench_lighthouse.py --label after`` (installs Lighthouse into ``bench/node/`` with
npm on the first run, from ``bench/node/package.json``). Not a test: nothing here asserts anything.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.servers import ServeProcess, stop_on_sigterm

BENCH = ROOT / "bench"
NODE = BENCH / "node"
LIGHTHOUSE = NODE / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROME = os.environ.get("CHROME_PATH", "/usr/bin/chromium")
RESULTS = BENCH / "results_lighthouse.md"
CATEGORIES = ("performance", "accessibility", "best-practices")
METRICS = (("first-contentful-paint", "FCP", "ms"), ("largest-contentful-paint", "LCP", "ms"),
           ("total-blocking-time", "TBT", "ms"), ("cumulative-layout-shift", "CLS", ""),
           ("speed-index", "Speed Index", "ms"))


def ensure_lighthouse() -> None:
    """``npm ci`` (or ``npm install``) into bench/node when Lighthouse is not there yet."""
    if LIGHTHOUSE.exists():
        return
    cmd = "ci" if (NODE / "package-lock.json").exists() else "install"
    subprocess.run(["npm", cmd, "--prefix", str(NODE), "--no-audit", "--no-fund"], check=True)


def run_lighthouse(url: str, out: Path) -> dict[str, Any]:
    """One Lighthouse run (mobile form factor, the default preset) of ``url``; its JSON report."""
    env = os.environ | {"CHROME_PATH": CHROME}
    subprocess.run(["node", str(LIGHTHOUSE), url, "--output=json", f"--output-path={out}", "--form-factor=mobile",
                    f"--only-categories={','.join(CATEGORIES)}", "--quiet",
                    # CI runs as root: Chromium refuses to start sandboxed there.
                    "--chrome-flags=--headless=new --no-sandbox"], env=env, check=True)
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    return report


def chromium_version() -> str:
    """``Chromium 1xx.…`` as the binary says it."""
    text = subprocess.run([CHROME, "--version"], capture_output=True, text=True, check=False).stdout
    return text.strip().split(" built on ")[0] or "unknown"


def failing(report: dict[str, Any], category: str) -> list[str]:
    """The audits of ``category`` that lost points: ``id (score)``, with console errors spelled out."""
    audits = report["audits"]
    lines = []
    for ref in report["categories"][category]["auditRefs"]:
        a = audits[ref["id"]]
        if ref.get("weight", 0) and a.get("score") is not None and a["score"] < 1:
            line = f"`{a['id']}` ({a['score']:.2f})"
            if a["id"] == "errors-in-console":
                items = (a.get("details") or {}).get("items") or []
                line += ": " + "; ".join(sorted({f"{i.get('source')}: {str(i.get('description'))[:90]}"
                                                 for i in items}))
            lines.append(line)
    return lines


def section(label: str, report: dict[str, Any], load: tuple[float, float, float], note: str) -> str:
    """The results section for one run."""
    cats = report["categories"]
    audits = report["audits"]
    env = report.get("environment", {})
    rows = [f"| {cats[c]['title']} | {cats[c]['score']:.2f} |" for c in CATEGORIES]
    for key, name, unit in METRICS:
        value = audits[key]["numericValue"]
        rows.append(f"| {name} | {value:.3f} |" if not unit else f"| {name} | {value / 1000:.2f} s |")
    lost = [f"- {c}: " + ", ".join(failing(report, c)) for c in CATEGORIES if failing(report, c)]
    shifts = (audits.get("layout-shifts", {}).get("details") or {}).get("items") or []
    shift_lines = [f"- layout shift {i.get('score', 0):.3f}: `{(i.get('node') or {}).get('selector', '?')}`"
                   for i in shifts[:5]]
    weight = audits.get("total-byte-weight", {}).get("numericValue")
    machine = (f"{os.cpu_count()} cores ({platform.machine()}), load average at start "
               f"{load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}, {chromium_version()}, "
               f"Lighthouse {report['lighthouseVersion']} (benchmark index {env.get('benchmarkIndex', '?')})")
    parts = [f"## {label}", "",
             f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, commit `{git_head()}`. {machine}.", ""]
    if note:
        parts += [note, ""]
    parts += ["| measure | value |", "|---|---|", *rows]
    if weight is not None:
        parts.append(f"| bytes transferred | {weight / 1024:.0f} KB |")
    parts.append("")
    if lost:
        parts += ["Audits that lost points:", *lost, ""]
    if shift_lines:
        parts += ["Largest layout shifts:", *shift_lines, ""]
    return "\n".join(parts)


def git_head() -> str:
    """The checkout's commit (short), ``+dirty`` when the tree has changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True,
                          check=False).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--", "geoservice"], cwd=ROOT, capture_output=True,
                           text=True, check=False).stdout.strip()
    return head + ("+dirty" if dirty else "")


HEADER = """# The couriers' page under Lighthouse

`bench/bench_lighthouse.py`: Lighthouse (npm, mobile preset: simulated slow 4G and a 4× slower CPU) against `/`
served by `geoservice serve` on a fresh embedded store with the bundled demo layers, in Debian's headless
Chromium (`--headless=new --no-sandbox`). No location is granted (Lighthouse's browser has none), and this
machine reaches no tile server: the page's map tiles (tile.openstreetmap.org by default) are unreachable,
as they are for a courier behind a filter. Targets (issue 15 part 6): performance ≥ 0.95, CLS ≤ 0.05,
accessibility 1.0, best practices 1.0. One run per section: scores move by a few points between runs. The
machine has 2 cores and may be shared with another test run while this one measures (see each section's load
average): Lighthouse multiplies the main-thread time it observes by 4, so a busy machine mostly inflates TBT.
What Lighthouse sees is the page a courier gets before saying where they are: the place chooser, no answer, no
map (the map, Leaflet and its tiles come with the first answer; that state is not scored here).
"""


def write(label: str, text: str) -> None:
    """Put the section ``label`` into the results file, replacing an older one of the same label."""
    old = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else HEADER
    sections = re.split(r"(?m)^(?=## )", old)
    head, rest = sections[0], [s for s in sections[1:] if s.splitlines()[0].strip() != f"## {label}"]
    RESULTS.write_text(head.rstrip() + "\n\n" + "\n".join(s.rstrip() + "\n" for s in [*rest, text]),
                       encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--label", default="after", help="the section of the results file (before, after, ...)")
    parser.add_argument("--note", default="", help="a line under the section's heading (e.g. the machine was busy)")
    parser.add_argument("--path", default="/", help="the page to measure")
    args = parser.parse_args()
    stop_on_sigterm()
    ensure_lighthouse()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-lighthouse-") as tmp:
        env = {"GEOSERVICE_EMBEDDED_PATH": str(Path(tmp) / "geoservice.sqlite")}
        with ServeProcess(["--workers", "1", "--threads", "4"], env=env) as server:
            url = f"http://127.0.0.1:{server.port}{args.path}"
            report = run_lighthouse(url, Path(tmp) / "report.json")
            (BENCH / "node" / f"report-{args.label}.json").write_text(json.dumps(report), encoding="utf-8")
    text = section(args.label, report, load, args.note)
    write(args.label, text)
    print(text)


if __name__ == "__main__":
    main()
