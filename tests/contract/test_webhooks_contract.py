"""Webhooks for partners on both stores (issue 14, item 3): a real HTTP receiver on loopback gets every change of
a run, signed, each batch once per idempotency key; while it is down the batch is retried with exponential
backoff and then dead-lettered; after an admin's replay the receiver holds exactly what the public API shows.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import json

from geoservice.model import decode_cursor
from geoservice.services import Services
from geoservice.services.webhooks import DeliveryPolicy, WebhookService
from geoservice.store.relational import Webhooks
from geoservice.webhook_delivery import KEY_HEADER, SIGNATURE_HEADER, endpoint_problems, sign, verify
from tests.contract.test_change_feed import State, comparable, feed, public_state
from tests.operators.test_operator_api import etag_of, patch
from tests.support.sites import sid
from tests.support.world import World, build_world

POLICY = DeliveryPolicy(max_attempts=3, retry_base_s=10.0, retry_cap_s=600.0, batch_size=4, allow_local=True)
T0 = dt.datetime(2026, 12, 2, 15, 0, tzinfo=dt.UTC)


@dataclasses.dataclass
class Receiver:
    """A partner's endpoint: checks each signature, applies each idempotency key once, newest entry per site."""

    secret: str = ""
    up: bool = True
    clock: float | None = T0.timestamp()  # the receiver's "now" for the signature's age (None: the real time)
    keys: dict[str, int] = dataclasses.field(default_factory=dict)  # key -> deliveries seen
    bad_signatures: int = 0
    cursors: list[int] = dataclasses.field(default_factory=list)    # cursors applied, in order
    state: State = dataclasses.field(default_factory=dict)
    newest: dict[str, int] = dataclasses.field(default_factory=dict)

    def receive(self, headers: Any, body: bytes) -> int:
        if not self.up:
            return 503
        if not verify(self.secret, headers.get(SIGNATURE_HEADER), body, now=self.clock):
            self.bad_signatures += 1
            return 401
        key = headers.get(KEY_HEADER)
        doc = json.loads(body)
        assert doc["idempotency_key"] == key
        self.keys[key] = self.keys.get(key, 0) + 1
        if self.keys[key] > 1:
            return 200  # applied already: acknowledge, do nothing
        for e in doc["entries"]:
            seq = decode_cursor(e["cursor"])
            self.cursors.append(seq)
            if seq > self.newest.get(e["site_id"], 0):  # an older entry (a replayed batch) never wins
                self.newest[e["site_id"]] = seq
                if e["feature"] is None:
                    self.state.pop(e["site_id"], None)
                else:
                    self.state[e["site_id"]] = comparable(e["feature"], e["feature"]["properties"]["closures"])
        return 204


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    rec = Receiver()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(rec.receive(self.headers, body))
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield rec, f"http://127.0.0.1:{server.server_address[1]}/hooks/geoservice"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(store: Services, tmp_path: Path) -> World:
    w = build_world(store, tmp_path)
    store.webhooks = WebhookService(Webhooks(store.spatial.database), store.sites.feed, POLICY)
    return w


def register(world: World, url: str, **extra: Any) -> tuple[int, str]:
    resp = world.client.post("/api/v1/admin/webhooks", json={"url": url, **extra}, headers=world.auth("carol"))
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["secret"].startswith("whsec_") and len(body["secret"]) > 40
    return body["webhook"]["id"], body["secret"]


def hook(world: World, hook_id: int) -> dict[str, Any]:
    resp = world.client.get(f"/api/v1/admin/webhooks/{hook_id}", headers=world.auth("carol"))
    assert resp.status_code == 200
    body: dict[str, Any] = resp.get_json()
    assert "secret" not in json.dumps(body)
    return body


def some_changes(world: World, note: str) -> None:
    assert patch(world, "alice", sid("op-a"), {"notes": note}).status_code == 200
    assert world.client.put(f"/api/v1/operator/sites/{sid('op-c')}/status", json={"state": "full"},
                            headers=world.auth("bob")).status_code == 200
    verified = world.client.post(f"/api/v1/sites/{sid('op-b')}/verify",
                                 headers=world.auth("alice", **{"If-Match": etag_of(world, sid("op-b"))}))
    assert verified.status_code == 200


def test_a_receiver_gets_every_change_once_and_recovers_after_being_down(world: World,
                                                                         receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    service = world.store.webhooks
    hook_id, rec.secret = register(world, url, since="0")  # from the very start: the load's entries too
    # Up: the whole history arrives, in batches of 4, each signed and under its own key.
    run = service.deliver_due(T0)
    everything, _ = feed(world)
    assert everything and run.entries == len(everything) and run.delivered == -(-len(everything) // 4)
    assert rec.cursors == [decode_cursor(e["cursor"]) for e in everything]
    assert rec.state == public_state(world) and rec.bad_signatures == 0
    assert service.deliver_due(T0).delivered == 0  # nothing new: nothing sent

    # Down: the next batch fails, is retried after 10 s and then 20 s, and after the third failure is a dead letter.
    rec.up = False
    some_changes(world, "停电 / power cut")
    assert service.deliver_due(T0).failed == 1
    h = hook(world, hook_id)
    assert h["attempts"] == 1 and h["last_error"] == "HTTP 503" and h["pending_through"] is not None
    assert dt.datetime.fromisoformat(h["next_attempt_at"]) == T0 + dt.timedelta(seconds=10)
    assert service.deliver_due(T0 + dt.timedelta(seconds=9)).failed == 0  # not due yet: not sent
    assert service.deliver_due(T0 + dt.timedelta(seconds=10)).failed == 1
    assert dt.datetime.fromisoformat(hook(world, hook_id)["next_attempt_at"]) == T0 + dt.timedelta(seconds=30)
    # More changes meanwhile do not enter the pending batch: a retry sends the same entries under the same key.
    some_changes(world, "仍在停电 / still down")
    assert service.deliver_due(T0 + dt.timedelta(seconds=30)).dead == 1
    letters = world.client.get(f"/api/v1/admin/webhooks/{hook_id}/dead-letters", headers=world.auth("carol"))
    assert letters.status_code == 200
    (letter,) = letters.get_json()["items"]
    assert letter["attempts"] == 3 and letter["last_error"] == "HTTP 503" and letter["entries"] == 3

    # Back up: later batches go through; the dead letter waits for an admin.
    rec.up = True
    t1 = T0 + dt.timedelta(seconds=31)
    assert service.deliver_due(t1).delivered >= 1
    missing = {decode_cursor(e["cursor"]) for e in feed(world)[0]} - set(rec.cursors)
    assert missing == set(range(decode_cursor(letter["first"]), decode_cursor(letter["last"]) + 1))
    replay = world.client.post(f"/api/v1/admin/webhooks/{hook_id}/dead-letters/{letter['id']}/replay",
                               headers=world.auth("carol"))
    assert replay.status_code == 202
    assert service.deliver_due(t1).replayed == 1
    # A second replay of the same letter reaches the receiver under the same key, and is not applied again.
    assert world.client.post(f"/api/v1/admin/webhooks/{hook_id}/dead-letters/{letter['id']}/replay",
                             headers=world.auth("carol")).status_code == 202
    assert service.deliver_due(t1).replayed == 1
    assert max(rec.keys.values()) == 2 and list(rec.keys.values()).count(2) == 1

    # Every entry of the feed applied exactly once; the receiver's state is the public state; no bad signature.
    everything, _ = feed(world)
    assert sorted(rec.cursors) == [decode_cursor(e["cursor"]) for e in everything]
    assert rec.state == public_state(world) and rec.bad_signatures == 0
    shown = hook(world, hook_id)
    assert shown["attempts"] == 0 and shown["dead_letters"] == 0
    assert shown["delivered_through"] == everything[-1]["cursor"]


def test_an_unreachable_endpoint_is_retried_with_a_reason(world: World) -> None:
    hook_id, _ = register(world, "http://127.0.0.1:9/hooks")  # port 9 (discard): nothing listens here
    some_changes(world, "x")
    assert world.store.webhooks.deliver_due(T0).failed == 1
    assert hook(world, hook_id)["last_error"].startswith("no answer")


def test_a_worker_holding_the_lease_keeps_others_off(world: World, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    hook_id, rec.secret = register(world, url)
    some_changes(world, "y")
    hooks = world.store.webhooks.hooks
    assert hooks.lease(hook_id, T0, T0 + dt.timedelta(minutes=2)) is not None
    assert world.store.webhooks.deliver_due(T0).delivered == 0 and not rec.keys
    # A worker that died: its lease runs out and another takes over.
    assert world.store.webhooks.deliver_due(T0 + dt.timedelta(minutes=3)).delivered == 1 and rec.cursors


def test_registration_needs_an_admin_and_a_public_https_endpoint(world: World) -> None:
    body = {"url": "https://93.184.216.34/hooks"}
    for name in ("alice", "bob"):
        resp = world.client.post("/api/v1/admin/webhooks", json=body, headers=world.auth(name))
        assert resp.status_code == 403
        assert world.client.get("/api/v1/admin/webhooks", headers=world.auth(name)).status_code == 403
    strict = DeliveryPolicy()
    for url, reason in (("http://93.184.216.34/hooks", "https://"), ("https://127.0.0.1/x", "non-public"),
                        ("https://10.1.2.3/x", "non-public"), ("https://[::1]/x", "non-public"),
                        ("https://u:p@93.184.216.34/x", "user name"), ("ftp://93.184.216.34/", "https://"),
                        ("https://localhost/x", "local name"), ("https://hooks.internal/x", "local name"),
                        ("https://intranet/x", "local name"), ("https://[fe80::1]/x", "non-public")):
        problems = endpoint_problems(url, strict.allow_local)
        assert problems and reason in problems[0].reason, url
    assert endpoint_problems("https://93.184.216.34/hooks", strict.allow_local) == []
    world.store.webhooks = WebhookService(Webhooks(world.store.spatial.database), world.store.sites.feed, strict)
    resp = world.client.post("/api/v1/admin/webhooks", json={"url": "https://192.168.1.10/hook"},
                             headers=world.auth("carol"))
    assert resp.status_code == 422
    assert resp.get_json()["errors"][0]["field"] == "url"
    bad_since = world.client.post("/api/v1/admin/webhooks", json={**body, "since": "zzzzzz"},
                                  headers=world.auth("carol"))
    assert bad_since.status_code == 422 and bad_since.get_json()["errors"][0]["field"] == "since"
    assert world.client.get("/api/v1/admin/webhooks", headers=world.auth("carol")).get_json() == {"items": []}


def test_a_signature_proves_the_body_and_its_age() -> None:
    body = b'{"entries":[]}'
    header = sign("whsec_k", int(T0.timestamp()), body)
    assert verify("whsec_k", header, body, now=T0.timestamp() + 299)
    assert not verify("whsec_k", header, body + b" ", now=T0.timestamp())
    assert not verify("whsec_other", header, body, now=T0.timestamp())
    assert not verify("whsec_k", header, body, now=T0.timestamp() + 301)
    assert not verify("whsec_k", None, body) and not verify("whsec_k", "t=x,v1=00", body)


def cli(store: Services, *args: str, **env: str) -> Any:
    from click.testing import CliRunner

    from geoservice.cli import main

    base = {"DATABASE_URL": store.spatial.url} if store.backend == "postgis" else {  # type: ignore[attr-defined]
        "DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]
    return CliRunner().invoke(main, list(args), env=base | env, catch_exceptions=False)


def test_the_cli_registers_delivers_and_replays(world: World, receiver: tuple[Receiver, str]) -> None:
    rec, url = receiver
    rec.clock = None  # the CLI signs at the real time
    local = {"GEOSERVICE_WEBHOOKS_ALLOW_LOCAL": "1", "GEOSERVICE_WEBHOOK_RETRY_BASE_S": "0",
             "GEOSERVICE_WEBHOOK_MAX_ATTEMPTS": "2"}
    refused = cli(world.store, "webhooks", "add", "ftp://example.org/x", **local)
    assert refused.exit_code == 1 and "error: url:" in refused.output
    added = cli(world.store, "webhooks", "add", url, "--since", "0", **local)
    assert added.exit_code == 0, added.output
    rec.secret = added.output.split("(shown once; verify each delivery's Geoservice-Signature with it): ")[1].strip()
    hook_id = world.store.webhooks.all()[0].id
    rec.up = False
    assert "1 failed" in cli(world.store, "webhooks", "deliver", "--once", **local).output
    assert "HTTP 503" in cli(world.store, "webhooks", "list", **local).output
    assert "1 given up" in cli(world.store, "webhooks", "deliver", "--once", **local).output
    letters = cli(world.store, "webhooks", "replay", str(hook_id), **local).output
    assert "cursors 1.." in letters and "HTTP 503" in letters
    rec.up = True
    queued = cli(world.store, "webhooks", "replay", str(hook_id), letters.split("\t")[0], **local)
    assert queued.exit_code == 0, queued.output
    assert "1 replayed" in cli(world.store, "webhooks", "deliver", "--once", **local).output
    assert rec.state == public_state(world) and rec.bad_signatures == 0
    # Without the local opt-in the worker will not post to a loopback http:// address, and says why.
    some_changes(world, "z")
    assert "1 failed" in cli(world.store, "webhooks", "deliver", "--once").output
    assert "must start with https://" in cli(world.store, "webhooks", "list").output
    assert cli(world.store, "webhooks", "remove", str(hook_id)).exit_code == 0
    assert cli(world.store, "webhooks", "list").output == ""
