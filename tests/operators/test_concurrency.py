"""No lost updates: 8 writers × 20 attempts of GET → PATCH (If-Match) on one site, through the HTTP app, on the
embedded store and on a real PostGIS.

Each round every writer reads the site (ETag + notes), all wait at a barrier, then all PATCH at once, appending
their own token to ``notes`` (read-modify-write). Exactly one write per round can win; the others must get 412.
Every accepted write must then be in the audit trail, in order, each built on the one before, and the final
notes must be the last accepted write.
"""
from __future__ import annotations

import threading
from typing import Any

from tests.support.sites import sid
from tests.support.world import World

WRITERS = 8
ROUNDS = 20


def test_concurrent_writers_never_lose_an_update(world: World) -> None:
    site = sid("op-a")
    barrier = threading.Barrier(WRITERS, timeout=60)
    results: list[dict[str, Any]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        client = world.client
        try:
            for r in range(ROUNDS):
                got = client.get(f"/api/v1/sites/{site}")
                assert got.status_code == 200
                etag, notes = got.headers["ETag"], got.get_json()["properties"]["notes"] or ""
                token = f"w{w}r{r}"
                barrier.wait()
                resp = client.patch(f"/api/v1/sites/{site}", json={"notes": f"{notes} {token}".strip()},
                                    headers=world.auth("alice", **{"If-Match": etag}))
                body = resp.get_json()
                with lock:
                    results.append({"token": token, "round": r, "status": resp.status_code, "sent": etag,
                                    "etag": resp.headers.get("ETag"),
                                    "notes": body.get("properties", {}).get("notes") if resp.status_code == 200
                                    else None})
                barrier.wait()  # the next round reads only after every PATCH of this one has answered
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    assert len(results) == WRITERS * ROUNDS
    assert {r["status"] for r in results} <= {200, 412}
    accepted = sorted((r for r in results if r["status"] == 200), key=lambda r: int(r["etag"].strip('"')))
    rejected = [r for r in results if r["status"] == 412]
    # One winner per round, everyone else told their version is stale (with the current ETag to reload).
    assert len(accepted) == ROUNDS and len(rejected) == (WRITERS - 1) * ROUNDS
    assert sorted(r["round"] for r in accepted) == list(range(ROUNDS))
    assert [int(r["etag"].strip('"')) for r in accepted] == list(range(2, ROUNDS + 2))
    assert all(r["etag"] is not None and r["etag"] != r["sent"] for r in rejected)

    # The audit trail holds exactly the accepted writes, in order, each one built on the previous state.
    history = world.client.get(f"/api/v1/sites/{site}/history", query_string={"limit": 200},
                               headers=world.auth("alice")).get_json()
    entries = list(reversed(history["items"]))
    assert history["total"] == ROUNDS
    assert [e["version"] for e in entries] == list(range(2, ROUNDS + 2))
    assert [e["changes"]["notes"]["after"].split()[-1] for e in entries] == [r["token"] for r in accepted]
    previous = None
    for entry in entries:
        assert entry["changes"]["notes"]["before"] == previous
        assert entry["actor"] == "alice" and entry["action"] == "update"
        previous = entry["changes"]["notes"]["after"]

    # Nothing silently lost, nothing rejected slipped in: the final notes are the accepted tokens in order.
    final = world.client.get(f"/api/v1/sites/{site}")
    assert final.headers["ETag"] == f'"{ROUNDS + 1}"'
    notes = final.get_json()["properties"]["notes"]
    assert notes == accepted[-1]["notes"] == " ".join(r["token"] for r in accepted)
    assert not set(notes.split()) & {r["token"] for r in rejected}


def test_the_store_alone_checks_the_version_atomically(world: World) -> None:
    """The same race straight at ``Store.update_site`` (no HTTP pre-check): the version check and the write are
    one atomic step in the store itself."""
    from geoservice.errors import VersionConflict

    store, site = world.store, sid("op-b")
    barrier = threading.Barrier(WRITERS, timeout=60)
    outcome: list[tuple[int, str, int | None]] = []
    lock = threading.Lock()
    errors: list[BaseException] = []

    def writer(w: int) -> None:
        try:
            for r in range(ROUNDS):
                current = store.sites.get_site(site)
                assert current is not None
                barrier.wait()
                try:
                    done = store.sites.update_site(site, {"notes": f"{current.notes or ''} w{w}r{r}".strip()},
                                             actor=f"writer{w}", expected_version=current.version)
                    with lock:
                        outcome.append((r, f"w{w}r{r}", done.after.version))
                except VersionConflict:
                    with lock:
                        outcome.append((r, f"w{w}r{r}", None))
                barrier.wait()
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(WRITERS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(120)
    assert not errors, errors
    won = sorted((o for o in outcome if o[2] is not None), key=lambda o: o[2])  # type: ignore[arg-type, return-value]
    assert [o[0] for o in won] == list(range(ROUNDS)) and [o[2] for o in won] == list(range(2, ROUNDS + 2))
    history, total = store.audit.site_history(site, limit=200)
    assert total == ROUNDS
    assert [c.changes["notes"]["after"].split()[-1] for c in reversed(history)] == [o[1] for o in won]
    assert store.sites.get_site(site).notes == " ".join(o[1] for o in won)  # type: ignore[union-attr]
