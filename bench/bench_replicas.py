"""Read throughput with reads on the primary only vs on one hot standby (same machine: the standby shares the
CPU, so this measures routing overhead and the primary's relief, not added capacity). In-process, 4 threads,
a district listing read per call. Writes results to bench/results_replicas.md."""
from __future__ import annotations

import threading
import time
from pathlib import Path

from geoservice.bootstrap import load_districts
from geoservice.services import Services
from geoservice.store.postgis import PostgisStore
from tests.support import LAYERS
from tools.pgcluster import HotStandby, ThrowawayCluster

SECONDS, THREADS = 3.0, 4


def run(store: PostgisStore) -> float:
    count = [0]
    lock = threading.Lock()
    stop = time.monotonic() + SECONDS

    def work() -> None:
        n = 0
        while time.monotonic() < stop:
            store.districts()
            n += 1
        with lock:
            count[0] += n

    threads = [threading.Thread(target=work) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return count[0] / SECONDS


def main() -> None:
    primary = ThrowawayCluster().start()
    standby = None
    try:
        url = primary.create_database("bench")
        s = Services.over(PostgisStore(url, max_size=2))
        s.migrate()
        load_districts(s, LAYERS)
        s.close()
        standby = HotStandby(primary).start()
        time.sleep(1)
        only = PostgisStore(url, max_size=THREADS)
        a = run(only)
        only.close()
        routed = PostgisStore(url, max_size=THREADS, read_urls=[standby.url("bench")])
        b = run(routed)
        routed.close()
        text = (f"# Read replicas: read throughput (bench/bench_replicas.py)\n\n"
                f"In-process, {THREADS} threads, {SECONDS:g} s each, district listing; primary and standby on the "
                "same machine (shared CPU).\n\n| reads on | reads/s |\n|---|---|\n"
                f"| primary only | {a:.0f} |\n| one standby | {b:.0f} |\n")
        Path(__file__).with_name("results_replicas.md").write_text(text)
        print(text)
    finally:
        if standby is not None:
            standby.stop()
        primary.stop()


if __name__ == "__main__":
    main()
