"""Our OGC API items endpoint vs pygeoapi's, over the same PostGIS sites table, under load (issue 7).

Both servers run under gunicorn with the same worker processes and threads (sized for 2 cores); wrk loads
them in alternating rounds (median kept) from a second process on loopback with the same bbox queries:

- ours:     /ogc/collections/warm_stations/items?bbox=...&limit=50
- pygeoapi: /collections/warm_stations/items?bbox=...&limit=50&f=json

pygeoapi (PyPI) lives in its own virtualenv, ``bench/.venv-pygeoapi`` (pins in ``bench/pygeoapi/requirements.txt``),
so its dependencies never meet ours; it is created on the first run. Its PostgreSQL provider reads one table or
view and has no fixed filter, so it is pointed at a view over ``sites`` (``kind = 'warm_station'``, the same flat
properties ours returns, ``geog`` exposed as ``geom``; pygeoapi's ``ST_Intersects(envelope, geom)`` then resolves
to the geography variant and uses the ``sites_geog`` GiST index). The view is dropped at the end.

Run:
    .venv/bin/python bench/bench_pygeoapi.py --database-url postgresql://...   # an existing database with sites
    .venv/bin/python bench/bench_pygeoapi.py                                    # own throwaway PostGIS, 200k sites

Needs Debian ``wrk``. Writes ``bench/results_pygeoapi.md``.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import re
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import wrkout

BENCH = ROOT / "bench"
PYGEOAPI_DIR = BENCH / "pygeoapi"
PYGEOAPI_VENV = BENCH / ".venv-pygeoapi"
TEMPLATE = PYGEOAPI_DIR / "config.template.yml"
REQUIREMENTS = PYGEOAPI_DIR / "requirements.txt"
COLLECTION = "warm_stations"
VIEW = "bench_pygeoapi_warm_stations"
SHANGHAI = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")

# The bbox of issue 7 (central Beijing: Dongcheng/Xicheng), then seven more of the same size around it for the
# rotating run. lon_min, lat_min, lon_max, lat_max in CRS84.
MAIN_BBOX = (116.38, 39.90, 116.42, 39.93)
BBOXES = [MAIN_BBOX] + [(round(x, 2), round(y, 2), round(x + 0.04, 2), round(y + 0.03, 2)) for x, y in (
    (116.30, 39.86), (116.34, 39.90), (116.42, 39.90), (116.46, 39.93), (116.38, 39.96), (116.30, 39.96),
    (116.46, 39.86))]

# The same flat properties /ogc/.../items gives a site (see geoservice/api/ogc.py, _site_feature).
VIEW_SQL = """
CREATE OR REPLACE VIEW {view} AS
SELECT s.id, s.source_id, s.kind, {kind_zh}::text AS kind_zh, {kind_en}::text AS kind_en, s.name_zh, s.name_en,
       s.address, s.district_adcode, d.name_zh AS district_zh, d.name_en AS district_en, s.opening_hours,
       array_to_string(s.amenities, ';') AS amenities, s.operator, s.phone, s.notes, s.simulated,
       s.updated_at, s.verified_at, s.version, s.geog AS geom
FROM sites s LEFT JOIN districts d ON d.adcode = s.district_adcode
WHERE s.kind = 'warm_station'
"""

WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


# ---- pygeoapi's virtualenv -------------------------------------------------------------------------
def venv_python() -> Path:
    return PYGEOAPI_VENV / "bin" / "python"


def ensure_pygeoapi_venv() -> None:
    """Create bench/.venv-pygeoapi and install the pinned requirements, unless they are already there."""
    probe = "import pygeoapi, psycopg2, sqlalchemy, geoalchemy2, pygeofilter, gunicorn"
    if venv_python().exists() and subprocess.run([str(venv_python()), "-c", probe],
                                                 capture_output=True).returncode == 0:
        return
    print(f"installing pygeoapi into {PYGEOAPI_VENV.relative_to(ROOT)} ...", flush=True)
    subprocess.run(["python3", "-m", "venv", str(PYGEOAPI_VENV)], check=True)
    subprocess.run([str(venv_python()), "-m", "pip", "install", "-q", "-r", str(REQUIREMENTS)], check=True)


def pygeoapi_versions() -> dict[str, str]:
    code = ("import json, sys, importlib.metadata as m; print(json.dumps({'python': sys.version.split()[0], "
            "**{p: m.version(p) for p in ('pygeoapi', 'SQLAlchemy', 'GeoAlchemy2', 'psycopg2-binary', "
            "'gunicorn', 'Flask')}}))")
    out = subprocess.run([str(venv_python()), "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def our_versions() -> dict[str, str]:
    import importlib.metadata as m

    out = {"python": platform.python_version()}
    for p in ("geoservice", "Flask", "gunicorn", "psycopg"):
        try:
            out[p] = m.version(p)
        except m.PackageNotFoundError:
            out[p] = "?"
    return out


# ---- database --------------------------------------------------------------------------------------
def db_parts(url: str) -> dict[str, str]:
    u = urlsplit(url)
    return {"host": u.hostname or "127.0.0.1", "dbport": str(u.port or 5432), "dbname": unquote(u.path.lstrip("/")),
            "user": unquote(u.username or "postgres"), "password": unquote(u.password or "")}


def create_view(url: str) -> None:
    import psycopg

    from geoservice.model import KIND_LABELS

    label = KIND_LABELS["warm_station"]
    quote = lambda s: "'" + s.replace("'", "''") + "'"  # noqa: E731
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP VIEW IF EXISTS {VIEW}")
        conn.execute(VIEW_SQL.format(view=VIEW, kind_zh=quote(label["zh"]), kind_en=quote(label["en"])))


def drop_view(url: str) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP VIEW IF EXISTS {VIEW}")


def db_facts(url: str) -> dict[str, Any]:
    """Versions, table sizes and, per bbox, the exact number of warm stations inside it (lon/lat box test)."""
    import psycopg

    with psycopg.connect(url) as conn:
        pg = conn.execute("SHOW server_version").fetchone()[0]
        postgis = conn.execute("SELECT postgis_lib_version()").fetchone()[0]
        total = conn.execute("SELECT count(*) FROM sites").fetchone()[0]
        warm = conn.execute("SELECT count(*) FROM sites WHERE kind = 'warm_station'").fetchone()[0]
        simulated = conn.execute("SELECT count(*) FROM sites WHERE simulated").fetchone()[0]
        exact = {}
        for bb in BBOXES:
            exact[bb] = conn.execute(
                "SELECT count(*) FROM sites WHERE kind = 'warm_station' "
                "AND ST_Intersects(geog::geometry, ST_MakeEnvelope(%s, %s, %s, %s, 4326))", bb).fetchone()[0]
    return {"postgresql": pg.split()[0], "postgis": postgis, "sites": total, "warm_stations": warm,
            "simulated": simulated, "exact": exact}


def load_standalone(n: int) -> tuple[Any, str]:
    """A throwaway PostGIS cluster with n simulated national sites, loaded as bench_scale.py does."""
    from bench.bench_scale import load_national
    from geoservice.bootstrap import load_bundled_calendar
    from geoservice.services import open_services
    from geoservice.settings import Settings
    from tools.pgcluster import ThrowawayCluster

    cluster = ThrowawayCluster(fast=False).start()
    try:
        url = cluster.create_database("bench_pygeoapi")
        store = open_services(Settings(database_url=url, autoload_layers=False))
        store.migrate()
        load_bundled_calendar(store)
        load_national(store, n)
        store.close()
    except BaseException:
        cluster.stop()
        raise
    return cluster, url


# ---- servers ---------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_pygeoapi_config(url: str, port: int, workdir: Path) -> tuple[Path, Path, str]:
    """Fill the template, generate pygeoapi's OpenAPI document; returns (config, openapi, config text)."""
    values = db_parts(url) | {"port": str(port), "collection": COLLECTION, "table": VIEW}
    values["password"] = json.dumps(values["password"]) if values["password"] else "null"
    text = string.Template(TEMPLATE.read_text(encoding="utf-8")).substitute(values)
    config = workdir / "pygeoapi-config.yml"
    config.write_text(text, encoding="utf-8")
    openapi = workdir / "pygeoapi-openapi.yml"
    subprocess.run([str(PYGEOAPI_VENV / "bin" / "pygeoapi"), "openapi", "generate", str(config),
                    "--output-file", str(openapi)], check=True, capture_output=True)
    shown = re.sub(r"(password:).*", r"\1 <redacted>", text) if db_parts(url)["password"] else text
    return config, openapi, shown


class Server:
    """A gunicorn server in its own process group, stopped by its pid."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], port: int, probe: str, log: Path):
        self.name, self.argv, self.port, self.probe = name, argv, port, probe
        self.log = log.open("wb")
        self.proc = subprocess.Popen(argv, env=os.environ | env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def _tail(self) -> str:
        self.log.flush()
        return Path(self.log.name).read_text(encoding="utf-8", errors="replace")[-3000:]

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self._tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.probe}", timeout=5) as r:
                    if r.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.5)
        raise RuntimeError(f"{self.name} did not answer {self.probe} within {timeout:.0f} s:\n{self._tail()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn's master stops its workers
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        self.log.close()


def start_ours(url: str, port: int, workers: int, threads: int, log: Path) -> Server:
    argv = [str(ROOT / ".venv/bin/geoservice"), "serve", "--port", str(port), "--workers", str(workers),
            "--threads", str(threads)]
    # wrk is one client address: without this the public rate limit would answer 429 after a minute's allowance.
    env = {"DATABASE_URL": url, "GEOSERVICE_PUBLIC_RATE_PER_MINUTE": "0"}
    return Server("geoservice", argv, env, port, "/ogc/collections", log)


def start_pygeoapi(config: Path, openapi: Path, port: int, workers: int, threads: int, log: Path) -> Server:
    # The same gunicorn settings `geoservice serve --workers N --threads T` uses (geoservice/serving.py).
    argv = [str(PYGEOAPI_VENV / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--worker-class", "gthread" if threads > 1 else "sync", "--timeout", "30",
            "--graceful-timeout", "10", "--keep-alive", "5", "--max-requests", "20000",
            "--max-requests-jitter", "2000", "pygeoapi.flask_app:APP"]
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    return Server("pygeoapi", argv, env, port, f"/collections/{COLLECTION}", log)


# ---- requests and load -----------------------------------------------------------------------------
def bbox_text(bb: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in bb)


def our_path(bb: tuple[float, ...], limit: int) -> str:
    return f"/ogc/collections/{COLLECTION}/items?bbox={bbox_text(bb)}&limit={limit}"


def pygeoapi_path(bb: tuple[float, ...], limit: int) -> str:
    return f"/collections/{COLLECTION}/items?bbox={bbox_text(bb)}&limit={limit}&f=json"


def fetch(port: int, path: str) -> tuple[dict, int]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30) as r:
        body = r.read()
    return json.loads(body), len(body)


def compare(ours_port: int, py_port: int, limit: int, exact: dict) -> list[dict]:
    """Per bbox: numberMatched, numberReturned, body bytes and whether the returned ids agree."""
    rows = []
    for bb in BBOXES:
        a, a_bytes = fetch(ours_port, our_path(bb, limit))
        b, b_bytes = fetch(py_port, pygeoapi_path(bb, limit))
        ids_a = [f["id"] for f in a["features"]]
        ids_b = [f["id"] for f in b["features"]]
        rows.append({"bbox": bb, "exact": exact[bb], "ours_matched": a["numberMatched"],
                     "ours_returned": a["numberReturned"], "ours_bytes": a_bytes,
                     "py_matched": b["numberMatched"], "py_returned": b["numberReturned"], "py_bytes": b_bytes,
                     "same_ids": ids_a == ids_b, "only_ours": sorted(set(ids_a) - set(ids_b)),
                     "only_py": sorted(set(ids_b) - set(ids_a)),
                     "ours_props": sorted(a["features"][0]["properties"]) if a["features"] else [],
                     "py_props": sorted(b["features"][0]["properties"]) if b["features"] else []})
    return rows


def run_wrk(port: int, paths: list[str], seconds: int, connections: int, workdir: Path) -> dict[str, Any]:
    script = workdir / f"wrk-{port}-{len(paths)}.lua"
    script.write_text(WRK_SCRIPT % ",".join(json.dumps(p) for p in paths), encoding="utf-8")
    proc = subprocess.run(["wrk", "-t", "2", "-c", str(connections), "-d", f"{seconds}s", "--latency",
                           "-s", str(script), f"http://127.0.0.1:{port}"],
                          capture_output=True, text=True, timeout=seconds + 60, check=True)
    return dict(wrkout.parse(proc.stdout))


def busy_cores(seconds: float = 2.0) -> float:
    """Cores kept busy by everything on the machine over a short window (both servers idle then): other load."""
    def sample() -> tuple[int, int]:
        values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    try:
        busy0, total0 = sample()
        time.sleep(seconds)
        busy1, total1 = sample()
    except (OSError, ValueError, IndexError):
        return float("nan")
    return (os.cpu_count() or 1) * (busy1 - busy0) / max(1, total1 - total0)


def bench_case(targets: dict[str, tuple[int, list[str]]], seconds: int, warmup: int, connections: int,
               rounds: int, workdir: Path) -> dict[str, dict[str, Any]]:
    """Warm each server up, then alternate them (A B, B A, A B, ...) for ``rounds`` measured runs each, so load
    from other processes on the machine hits both alike; keep each server's median round by throughput."""
    for port, paths in targets.values():
        run_wrk(port, paths, warmup, connections, workdir)  # fill pools, caches, the planner's statistics
    runs: dict[str, list[dict[str, Any]]] = {who: [] for who in targets}
    order = list(targets)
    for i in range(rounds):
        for who in (order if i % 2 == 0 else order[::-1]):
            other = busy_cores(1.0)
            port, paths = targets[who]
            runs[who].append(run_wrk(port, paths, seconds, connections, workdir) | {"other_load": other})
    out = {}
    for who, rs in runs.items():
        median = sorted(rs, key=lambda r: r["req_per_s"])[len(rs) // 2]
        out[who] = median | {"rounds": [r["req_per_s"] for r in rs], "others": [r["other_load"] for r in rs]}
    return out


# ---- report ----------------------------------------------------------------------------------------
def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def fmt_ratio(a: float, b: float) -> str:
    return f"{a / b:.1f}×" if b else "n/a"


def report(args: argparse.Namespace, facts: dict, versions: dict, rows: list[dict], runs: dict, config_text: str,
           source: str, target: float) -> str:
    ours_v, py_v = versions["ours"], versions["pygeoapi"]
    main_row = rows[0]
    lines = [
        "## OGC API items: geoservice vs pygeoapi (issue 7)",
        "",
        f"Generated by `bench/bench_pygeoapi.py` on {dt.datetime.now(SHANGHAI):%Y-%m-%d %H:%M} (Asia/Shanghai).",
        "",
        f"- Machine: {os.cpu_count()} cores, {cpu_model()}, {platform.system()} {platform.release()}. Servers, "
        "PostgreSQL and wrk share these cores.",
        f"- Database: PostgreSQL {facts['postgresql']}, PostGIS {facts['postgis']}; {source}: "
        f"{facts['sites']:,} sites ({facts['simulated']:,} SIMULATED), {facts['warm_stations']:,} of them warm "
        "stations.",
        f"- geoservice {ours_v['geoservice']} (Python {ours_v['python']}, Flask {ours_v['Flask']}, gunicorn "
        f"{ours_v['gunicorn']}, psycopg {ours_v['psycopg']}).",
        f"- pygeoapi {py_v['pygeoapi']} from PyPI in its own virtualenv (Python {py_v['python']}, Flask "
        f"{py_v['Flask']}, gunicorn {py_v['gunicorn']}, SQLAlchemy {py_v['SQLAlchemy']}, GeoAlchemy2 "
        f"{py_v['GeoAlchemy2']}, psycopg2-binary {py_v['psycopg2-binary']}), its built-in `PostgreSQL` feature "
        "provider.",
        f"- Both under gunicorn, {args.workers} workers × {args.threads} threads "
        f"({'gthread' if args.threads > 1 else 'sync'}), keep-alive 5 s, no access log; started one after the "
        "other on loopback, each idle while the other is loaded.",
        f"- Load: wrk 2 threads × {args.connections} connections; per case each server gets a {args.warmup} s "
        f"warm-up, then {args.rounds} measured rounds of {args.seconds} s alternating with the other; "
        f"`limit={args.limit}`.",
        f"- ours: `GET {our_path(MAIN_BBOX, args.limit)}`",
        f"- pygeoapi: `GET {pygeoapi_path(MAIN_BBOX, args.limit)}`",
        "",
        "### What pygeoapi reads",
        "",
        "pygeoapi's PostgreSQL provider publishes one table or view and has no fixed filter, so it reads the view "
        f"`{VIEW}`: `sites` restricted to `kind = 'warm_station'`, left-joined to `districts` for the district "
        "names, `amenities` joined with `;`, and the `geog` geography column exposed as `geom`. No copy of the data: "
        "its `ST_Intersects(ST_MakeEnvelope(bbox, 4326), geom)` resolves to PostGIS's geography variant and uses "
        "the same `sites_geog` GiST index ours uses. The properties are the ones ours returns, so payloads are "
        "comparable:",
        "",
        "```sql",
        VIEW_SQL.format(view=VIEW, kind_zh="'暖心驿站'", kind_en="'Warm station'").strip(),
        "```",
        "",
        "### Same answers?",
        "",
        "`exact` counts warm stations whose lon/lat lies inside the bbox (planar CRS84 test in SQL).",
        "",
        "| bbox | exact | ours matched / returned | ours bytes | pygeoapi matched / returned | pygeoapi bytes "
        "| same ids |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(f"| {bbox_text(r['bbox'])} | {r['exact']} | {r['ours_matched']} / {r['ours_returned']} | "
                     f"{r['ours_bytes']:,} | {r['py_matched']} / {r['py_returned']} | {r['py_bytes']:,} | "
                     f"{'yes' if r['same_ids'] else 'no'} |")
    lines.append("")
    extra_props = sorted(set(main_row["py_props"]) - set(main_row["ours_props"]))
    missing_props = sorted(set(main_row["ours_props"]) - set(main_row["py_props"]))
    lines.append(f"Main bbox: ours {main_row['ours_bytes']:,} bytes for {main_row['ours_returned']} features, "
                 f"pygeoapi {main_row['py_bytes']:,} bytes for {main_row['py_returned']} features. Properties per "
                 f"feature: ours {len(main_row['ours_props'])}, pygeoapi {len(main_row['py_props'])}"
                 + (f" (pygeoapi only: {', '.join(extra_props)})" if extra_props else "")
                 + (f" (ours only: {', '.join(missing_props)})" if missing_props else "") + ".")
    mismatched = [r for r in rows if r["ours_matched"] != r["py_matched"] or not r["same_ids"]]
    if mismatched:
        over = [r for r in rows if r["ours_matched"] > r["exact"]]
        lines.append("")
        lines.append(f"**The answers differ for {len(mismatched)} of {len(rows)} bboxes.** "
                     + (f"Ours matches more sites than lie inside the box for {len(over)} of them: "
                        "`list_sites` filters with `geog && ST_MakeEnvelope(...)::geography` only, and `&&` on "
                        "geography compares geocentric bounding boxes, an index pre-filter that also lets through "
                        "points a few hundred metres outside the box. pygeoapi's `ST_Intersects` is exact. "
                        if over else "")
                     + "Throughput below is therefore for slightly different result sets; see the table.")
    lines += ["", "### Throughput and latency", "",
              f"Each server ran {args.rounds} measured rounds per case, alternating with the other (A B, B A, ...); "
              "the row is its median round by throughput (latencies from that same round), `rounds` lists every "
              "round's req/s. `other` is how many of the 2 cores something else kept busy in the second before "
              "each round (servers idle then): near 0 means the round had the machine to itself.", "",
              "| case | server | req/s | p50 ms | p75 ms | p90 ms | p99 ms | non-2xx | socket errors | rounds req/s "
              "| other |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---|---|"]
    for case, pair in runs.items():
        for who in ("ours", "pygeoapi"):
            r = pair[who]
            lines.append(f"| {case} | {who} | {r['req_per_s']:.0f} | {r['p50']:.2f} | {r['p75']:.2f} | "
                         f"{r['p90']:.2f} | {r['p99']:.2f} | {r['non_2xx']} | {r['socket_errors']} | "
                         f"{', '.join(f'{x:.0f}' for x in r['rounds'])} | "
                         f"{', '.join(f'{x:.1f}' for x in r['others'])} |")
    lines += ["", "| case | throughput ours / pygeoapi | p50 pygeoapi / ours | p90 pygeoapi / ours | "
              "p99 pygeoapi / ours | target |", "|---|---:|---:|---:|---:|---|"]
    for case, pair in runs.items():
        a, b = pair["ours"], pair["pygeoapi"]
        ratio = a["req_per_s"] / b["req_per_s"] if b["req_per_s"] else float("nan")
        lines.append(f"| {case} | {fmt_ratio(a['req_per_s'], b['req_per_s'])} | {fmt_ratio(b['p50'], a['p50'])} | "
                     f"{fmt_ratio(b['p90'], a['p90'])} | {fmt_ratio(b['p99'], a['p99'])} | "
                     f"{'met' if ratio >= target else 'NOT met'} (≥ {target:g}×) |")
    lines += ["", "### pygeoapi configuration used", "",
              "From `bench/pygeoapi/config.template.yml`; pins in `bench/pygeoapi/requirements.txt`.", "",
              "```yaml", config_text.strip(), "```", ""]
    return "\n".join(lines)


# ---- main ------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", help="an existing PostGIS database with sites (default: own cluster)")
    parser.add_argument("--national", type=int, default=200_000, help="sites to load into the own cluster")
    parser.add_argument("--seconds", type=int, default=8, help="wrk duration per measured round")
    parser.add_argument("--rounds", type=int, default=3, help="measured rounds per server and case (median kept)")
    parser.add_argument("--warmup", type=int, default=3, help="wrk warm-up before each measured run (s)")
    parser.add_argument("--workers", type=int, default=4, help="gunicorn workers, both servers")
    parser.add_argument("--threads", type=int, default=2, help="threads per worker, both servers")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections")
    parser.add_argument("--limit", type=int, default=50)
    parser.add_argument("--target", type=float, default=5.0, help="throughput ratio to meet")
    parser.add_argument("--no-rotate", action="store_true", help="only the main bbox, not the 8-bbox rotation")
    parser.add_argument("-o", type=Path, default=BENCH / "results_pygeoapi.md")
    args = parser.parse_args()

    ensure_pygeoapi_venv()
    versions = {"ours": our_versions(), "pygeoapi": pygeoapi_versions()}
    cluster = None
    if args.database_url:
        url, source = args.database_url, "existing database"
    else:
        cluster, url = load_standalone(args.national)
        source = "own throwaway cluster"
    servers: list[Server] = []
    try:
        with tempfile.TemporaryDirectory(prefix="bench-pygeoapi-") as tmp:
            work = Path(tmp)
            create_view(url)
            ours_port, py_port = free_port(), free_port()
            config, openapi, config_text = write_pygeoapi_config(url, py_port, work)
            servers.append(start_ours(url, ours_port, args.workers, args.threads, work / "ours.log"))
            servers[-1].wait_ready()  # ours first: `serve` migrates and loads districts if they are missing
            servers.append(start_pygeoapi(config, openapi, py_port, args.workers, args.threads,
                                          work / "pygeoapi.log"))
            servers[-1].wait_ready()
            facts = db_facts(url)
            rows = compare(ours_port, py_port, args.limit, facts["exact"])
            for r in rows:
                print(f"bbox {bbox_text(r['bbox'])}: exact {r['exact']}, ours {r['ours_matched']}/"
                      f"{r['ours_returned']} ({r['ours_bytes']} B), pygeoapi {r['py_matched']}/{r['py_returned']} "
                      f"({r['py_bytes']} B), same ids: {r['same_ids']}", flush=True)
            cases = {f"1 bbox ({bbox_text(MAIN_BBOX)})": [MAIN_BBOX]}
            if not args.no_rotate:
                cases[f"{len(BBOXES)} bboxes, rotating"] = BBOXES
            runs: dict[str, dict[str, dict]] = {}
            for case, bbs in cases.items():
                targets = {"ours": (ours_port, [our_path(bb, args.limit) for bb in bbs]),
                           "pygeoapi": (py_port, [pygeoapi_path(bb, args.limit) for bb in bbs])}
                runs[case] = bench_case(targets, args.seconds, args.warmup, args.connections, args.rounds, work)
                for who, r in runs[case].items():
                    print(f"{case}, {who}: {r['req_per_s']:.0f} req/s (rounds: "
                          f"{', '.join(f'{x:.0f}' for x in r['rounds'])}), p50 {r['p50']:.2f} ms, p90 "
                          f"{r['p90']:.2f} ms, p99 {r['p99']:.2f} ms, non-2xx {r['non_2xx']}", flush=True)
    finally:
        for s in reversed(servers):
            s.stop()
        try:
            drop_view(url)
        finally:
            if cluster is not None:
                cluster.stop()
    text = report(args, facts, versions, rows, runs, config_text, source, args.target)
    args.o.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
