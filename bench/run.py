"""Run every benchmark and assemble bench/results.md (machine, versions, date in each part).

    .venv/bin/python bench/run.py            # ~50 minutes on 2 cores; needs Debian wrk and nginx, and the
                                             # [bench] extra (gunicorn, waitress) for the server comparison

Parts: bench_nearest.py (demo size, both stores, in-store and HTTP), bench_scale.py (demo vs 200k national
sites: PostGIS in-database with sequential-scan and unfiltered-KNN baselines, embedded, gunicorn under wrk),
bench_pygeoapi.py (our /ogc items vs pygeoapi's over the same PostGIS table, under wrk; installs pygeoapi
into its own virtualenv on the first run), bench_coverage.py (planners' coverage run, week profile, map size).
bench_servers.py (gunicorn, waitress, granian, nginx in front: throughput and slow clients), bench_outage.py
(a served burst while PostGIS is down; appends a row), bench_soak.py (10-minute open-loop mixed soak of the
production setup and a step-up ramp). bench_embedded.py (embedded store before/after its segment cache) is a
separate comparison, not run here.
Tests never assert timings.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
PARTS = [
    (["bench_nearest.py", "-o", str(BENCH / "results_nearest.md")], "results_nearest.md"),
    (["bench_scale.py"], "results_scale.md"),
    (["bench_pygeoapi.py"], "results_pygeoapi.md"),
    (["bench_coverage.py"], "results_coverage.md"),
    (["bench_servers.py", "--rounds", "2"], "results_servers.md"),
    (["bench_outage.py"], "results_outage.md"),
    (["bench_soak.py"], "results_soak.md"),
]


def assemble() -> str:
    """results.md from whichever part files exist."""
    texts = []
    for _, name in PARTS:
        path = BENCH / name
        if path.exists():
            texts.append(path.read_text(encoding="utf-8").strip())
    return "\n\n---\n\n".join(texts) + "\n"


def main() -> None:
    only_assemble = "--assemble" in sys.argv
    if not only_assemble:
        for args, _ in PARTS:
            subprocess.run([sys.executable, str(BENCH / args[0]), *args[1:]], check=True)
    (BENCH / "results.md").write_text(assemble(), encoding="utf-8")
    print((BENCH / "results.md").read_text(encoding="utf-8"))


if __name__ == "__main__":
    main()
