"""`geoservice operators …`: accounts, assignments, tokens shown once, bulk all-or-nothing with every bad line."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from geoservice.auth import token_hash
from geoservice.cli import main
from geoservice.services import Services
from tests.support.sites import sid
from tests.support.world import World, rows_of_every_table

from .conftest import tomorrow_at


def run_env(store: Services) -> dict[str, str]:
    if store.backend == "postgis":
        return {"DATABASE_URL": store.spatial.url}  # type: ignore[attr-defined]
    return {"DATABASE_URL": "", "GEOSERVICE_EMBEDDED_PATH": str(store.spatial.path)}  # type: ignore[attr-defined]


def run(store: Services, *args: str) -> Result:
    return CliRunner().invoke(main, list(args), env=run_env(store), catch_exceptions=False)


def test_accounts_assignments_and_tokens(embedded_world: World) -> None:
    store = embedded_world.store
    created = run(store, "operators", "create", "dora")
    assert created.exit_code == 0 and "created operator dora" in created.output
    assert run(store, "operators", "create", "dora").exit_code == 1
    assert run(store, "operators", "create", "staff2", "--admin").exit_code == 0
    assert store.accounts.get("staff2").is_admin  # type: ignore[union-attr]
    bad = run(store, "operators", "assign", "dora", sid("op-d"), "no-such-site")
    assert bad.exit_code == 1 and "no-such-site" in bad.stderr and "nothing was assigned" in bad.stderr
    assert store.accounts.get("dora").site_count == 0  # type: ignore[union-attr]
    assert run(store, "operators", "assign", "dora", sid("op-d")).exit_code == 0

    issued = run(store, "operators", "token", "issue", "dora", "--label", "front desk")
    assert issued.exit_code == 0
    token = issued.stdout.strip()
    assert token.startswith("gso_") and len(token) >= 47 and "\n" not in token
    assert "shown once" in issued.stderr and token not in issued.stderr
    assert store.accounts.for_token(token_hash(token)).name == "dora"  # type: ignore[union-attr]
    assert token not in rows_of_every_table(store)
    listed = run(store, "operators", "list")
    assert "dora\toperator\t1 site(s)\t1 active token(s)" in listed.output
    assert "staff2\tadmin\tall sites" in listed.output
    tokens = run(store, "operators", "token", "list", "dora")
    assert "front desk" in tokens.output and "active" in tokens.output and token not in tokens.output
    token_id = tokens.output.split("\t")[0]
    assert embedded_world.client.get("/api/v1/operator/me",
                                     headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert run(store, "operators", "token", "revoke", "dora").exit_code == 1  # ids or --all
    revoked = run(store, "operators", "token", "revoke", "dora", token_id)
    assert revoked.exit_code == 0 and "1 token(s) revoked" in revoked.output
    assert embedded_world.client.get("/api/v1/operator/me",
                                     headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert run(store, "operators", "unassign", "dora", sid("op-d")).exit_code == 0
    assert store.accounts.get("dora").site_count == 0  # type: ignore[union-attr]


def test_bulk_from_the_command_line_is_all_or_nothing(world: World, tmp_path: Path) -> None:
    store = world.store
    a, b, c = sid("op-a"), sid("op-b"), sid("op-c")
    day = tomorrow_at(0).date()
    bad = tmp_path / "bad.csv"
    bad.write_text("site_id,opening_hours,closed_from,closed_to,reason\n"
                   f"{a},Mo-Su 18:00-22:00,,,\n"
                   f"{b},Mo-Su 25:00-26:00,,,\n"
                   f"{c},24/7,,,\n"
                   f"{a},,{day},yesterday,\n", encoding="utf-8")
    result = run(store, "operators", "bulk", "alice", str(bad))
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"{bad}:line 3: opening_hours: cannot parse")
    assert lines[1] == f"{bad}:line 4: site_id: {c} is not one of your sites"
    assert lines[2].startswith(f"{bad}:line 5: closed_to: 'yesterday' is not a date")
    assert lines[3] == f"{bad}: 3 problem(s); nothing was changed"
    assert store.sites.get_site(a).opening_hours == "24/7" and store.audit.recent()[1] == 0  # type: ignore[union-attr]

    good = tmp_path / "good.csv"
    good.write_text("site_id,opening_hours,closed_from,closed_to,reason\n"
                    f"{a},Mo-Su 18:00-22:00,,,\n"
                    f"{b},,{day},{day},盘点\n", encoding="utf-8")
    dry = run(store, "operators", "bulk", "alice", str(good), "--dry-run")
    assert dry.exit_code == 0, dry.output
    assert "opening_hours: '24/7' -> 'Mo-Su 18:00-22:00'" in dry.output
    assert f"closures: + {day} .. {day} (盘点)" in dry.output
    assert "2 site(s) would change (dry run, nothing written)" in dry.output
    assert store.sites.get_site(a).opening_hours == "24/7" and store.audit.recent()[1] == 0  # type: ignore[union-attr]
    applied = run(store, "operators", "bulk", "alice", str(good))
    assert applied.exit_code == 0 and "2 site(s) changed" in applied.output
    assert store.sites.get_site(a).opening_hours == "Mo-Su 18:00-22:00"  # type: ignore[union-attr]
    assert {(ch.actor, ch.action) for ch in store.audit.recent()[0]} == {("alice", "bulk")}
    assert a not in world.nearest_ids(tomorrow_at(10)) and b not in world.nearest_ids(tomorrow_at(10))


def test_a_token_limited_to_one_site_from_the_command_line(embedded_world: World) -> None:
    store = embedded_world.store
    issued = run(store, "operators", "token", "issue", "alice", "--label", "door", "--site", sid("op-a"))
    assert issued.exit_code == 0
    token = issued.stdout.strip()
    assert store.accounts.for_token(token_hash(token)).token_site == sid("op-a")  # type: ignore[union-attr]
    listed = run(store, "operators", "token", "list", "alice").output
    assert f"site {sid('op-a')} (live status only)" in listed
    door = {"Authorization": f"Bearer {token}"}
    c = embedded_world.client
    posted = c.put(f"/api/v1/operator/sites/{sid('op-a')}/status", json={"state": "full"}, headers=door)
    assert posted.status_code == 200
    assert c.get("/api/v1/operator/me", headers=door).status_code == 403
    # Not one of alice's sites: refused, nothing issued.
    refused = run(store, "operators", "token", "issue", "alice", "--site", sid("op-c"))
    assert refused.exit_code == 1 and sid("op-c") in refused.stderr
    assert len(store.accounts.tokens("alice")) == 2  # the test world's own and the door's


def test_accounts_with_logins_passwords_from_stdin_unlock_and_reset(world: World) -> None:
    store = world.store
    districts = [d.adcode for d in store.sites.districts()][:1]
    made = run(store, "operators", "create", "某银行东城支行", "--login", "Dongcheng-Bank", "--role",
               "district_admin", "--district", districts[0])
    assert made.exit_code == 0, made.output
    assert "created district_admin 某银行东城支行 (login dongcheng-bank)" in made.output
    assert "operators password" in made.output
    assert run(store, "operators", "create", "无区", "--role", "district_admin").exit_code == 1
    assert run(store, "operators", "create", "x", "--admin", "--role", "operator").exit_code == 1

    def password(name: str, text: str) -> Result:
        return CliRunner().invoke(main, ["operators", "password", name], input=text, catch_exceptions=False,
                                  env=run_env(store))

    short = password("某银行东城支行", "tiny-pw\n")
    assert short.exit_code == 1 and "at least 10" in short.stderr and "tiny-pw" not in short.output
    same = password("某银行东城支行", "DONGCHENG-BANK\n")
    assert same.exit_code == 1 and "login" in same.stderr
    secret = "a script's password 一二三"
    done = password("某银行东城支行", secret + "\n")
    assert done.exit_code == 0 and secret not in done.output and "dongcheng-bank" in done.output
    assert secret not in rows_of_every_table(store)
    c = world.client
    signed = c.post("/api/v1/session", json={"login": "dongcheng-bank", "password": secret})
    assert signed.status_code == 200 and signed.get_json()["account"]["role"] == "district_admin"
    assert password("alice", "no login yet 123\n").exit_code == 1  # alice has no login name
    assert run(store, "operators", "login", "alice", "alice").exit_code == 0
    assert password("alice", "alice's password 1\n").exit_code == 0

    for _ in range(10):  # ten wrong passwords in a row, as the sign-in counts them
        store.accounts.failed_login(store.accounts.get("alice").id, 10)  # type: ignore[union-attr]
    assert store.accounts.get("alice").locked  # type: ignore[union-attr]
    unlocked = run(store, "operators", "unlock", "alice")
    assert unlocked.exit_code == 0 and "unlocked" in unlocked.output
    assert not store.accounts.get("alice").locked  # type: ignore[union-attr]

    reset = run(store, "operators", "reset", "alice")
    assert reset.exit_code == 0 and "shown once" in reset.stderr
    code = reset.stdout.strip()
    assert code and code not in reset.stderr and code not in rows_of_every_table(store)
    assert c.post("/api/v1/session", json={"login": "alice", "password": "alice's password 1"}).status_code == 401
    assert c.post("/api/v1/session/setup", json={"login": "alice", "setup_code": code,
                                                "password": "after the reset 1"}).status_code == 204
    assert c.post("/api/v1/session", json={"login": "alice", "password": "after the reset 1"}).status_code == 200
