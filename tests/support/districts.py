"""A two-district world over any store: Dongcheng (the operators' network around Tiananmen) and a Xicheng site,
an operator in each, a district admin of each and a city admin, each with a token."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from geoservice.auth import new_token, token_hash
from geoservice.services import Services
from geoservice.settings import Settings
from tests.support import LAYERS
from tests.support.sites import make_sites, sid
from tests.support.world import operator_sites

DONGCHENG, XICHENG = "110101", "110102"
# An operator (Dongcheng sites), the district admins of 110101 and 110102, the city admin.
ROLES = ("alice", "dcadmin", "xcadmin", "carol")


@dataclasses.dataclass
class Districts:
    """The store, the app, a token per account, and the in-district site and account of each district."""

    store: Services
    app: Any
    tokens: dict[str, str]
    site: dict[str, str]  # district -> a site in it
    account: dict[str, str]  # district -> the login of an operator account of it

    @property
    def client(self) -> Any:
        return self.app.test_client()

    def auth(self, name: str, **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}", **headers}


def build_districts(store: Services, tmp_path: Path) -> Districts:
    """Seed ``store`` with the two districts' sites and accounts and serve it."""
    from geoservice import create_app

    sites = operator_sites(store) + make_sites(store, [("op-x", -3500, 300, "24/7", "warm_station", ["wifi"])])
    store.sites.upsert_sites(sites)
    by_id = {s.id: s.district_adcode for s in sites}
    assert by_id[sid("op-a")] == DONGCHENG and by_id[sid("op-x")] == XICHENG
    store.accounts.create("alice", login="alice")
    store.accounts.create("西城某驿站", login="xop")
    store.accounts.create("东城区总工会", "district_admin", login="dcadmin", districts=[DONGCHENG])
    store.accounts.create("西城区总工会", "district_admin", login="xcadmin", districts=[XICHENG])
    store.accounts.create("carol", "admin", login="carol")
    store.accounts.assign("alice", [sid("op-a"), sid("op-b")])
    store.accounts.assign("西城某驿站", [sid("op-x")])
    for login, district in (("alice", DONGCHENG), ("xop", XICHENG)):  # as if their district admins created them
        store.accounts.set_home_district(store.accounts.by_login(login).id, district)  # type: ignore[union-attr]
    tokens = {}
    for login in ("alice", "xop", "dcadmin", "xcadmin", "carol"):
        op = store.accounts.by_login(login)
        assert op is not None
        tokens[login] = new_token()
        store.accounts.add_token(op.name, token_hash(tokens[login]), "test")
    app = create_app(Settings(embedded_path=tmp_path / "unused.sqlite", layers_dir=LAYERS), services=store,
                     prepare=False)
    app.config["TESTING"] = True
    return Districts(store, app, tokens, {DONGCHENG: sid("op-a"), XICHENG: sid("op-x")},
                     {DONGCHENG: "alice", XICHENG: "xop"})
