"""Both OpenAPI documents tell the truth: schemathesis runs every check (``--checks all``) against the service,
on both stores, over a fresh copy of the demo network, with an admin token.

The documents are fetched from the running service, so what is tested is what partners read. The checks are
schemathesis's own: no 5xx, every status/content type/header/body as documented, schema-valid requests
accepted and schema-invalid ones refused, required headers required, unsupported methods refused with
``Allow``, deleted resources gone, secured operations refusing anonymous callers (``ignored_auth``), plus the
stateful phase that follows the documents' links (read a site → change it with its ETag → remove the closure
just added). The few rules JSON Schema cannot state are listed, each with its reason, in ``fuzz/schemathesis.toml``;
format strategies (opening hours, phone numbers, recent times) are in ``fuzz/hooks.py``.

``GEOSERVICE_TEST_FUZZ_EXAMPLES`` and ``GEOSERVICE_TEST_FUZZ_SEED`` make a longer or different run; the report of
each run is written to ``test-artifacts/``.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from werkzeug.serving import make_server

from geoservice import create_app
from geoservice.bootstrap import ensure_ready
from geoservice.services import Services, open_services
from geoservice.settings import Settings
from tests.support import LAYERS, ROOT

HERE = Path(__file__).parent
FUZZ = HERE / "fuzz"
ARTIFACTS = ROOT / "test-artifacts"
DOCUMENTS = {"api": "/api/v1/openapi.json", "ogc": "/ogc/api"}
EXAMPLES = int(os.environ.get("GEOSERVICE_TEST_FUZZ_EXAMPLES", "12"))
SEED = int(os.environ.get("GEOSERVICE_TEST_FUZZ_SEED", "20261201"))
ADMIN = "fuzz-admin"


@dataclasses.dataclass
class Target:
    """A running service over its own store: where it listens and what a caller needs."""

    name: str
    url: str
    token: str
    site_ids: list[str]


def _serve(services: Services, settings: Settings, name: str) -> Iterator[Target]:
    if services.accounts.get(ADMIN) is None:
        services.accounts.create(ADMIN, role="admin")
    token, _ = services.accounts.issue_token(ADMIN, label="fuzz")
    site_ids = [s.id for s in services.spatial.all_sites()[:200]]
    app = create_app(settings, services=services, prepare=False)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # thousands of request lines; failures say enough
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Target(name, f"http://127.0.0.1:{server.server_port}", token, site_ids)
    finally:
        server.shutdown()
        thread.join(timeout=10)


@pytest.fixture(scope="module", params=["embedded", pytest.param("postgis", marks=pytest.mark.postgis)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    """A fresh demo network (the fuzzer writes to it) behind a real HTTP server, per store."""
    tmp = tmp_path_factory.mktemp(f"fuzz-{request.param}")
    common = {"layers_dir": LAYERS, "public_rate_per_minute": 0,
              "rate_limit_dir": tmp / "limits"}
    if request.param == "embedded":
        settings = Settings(embedded_path=tmp / "demo.sqlite", **common)
        services = open_services(settings)
        ensure_ready(services, settings)
        yield from _serve(services, settings, "embedded")
        services.close()
        return
    pg_server = request.getfixturevalue("pg_server")
    name = f"gs_fuzz_{os.getpid()}"
    pg_server.drop_database(name)
    url = pg_server.create_database(name, template=request.getfixturevalue("pg_template"))
    settings = Settings(database_url=url, **common)
    services = open_services(settings)
    ensure_ready(services, settings)
    yield from _serve(services, settings, "postgis")
    services.close()
    pg_server.drop_database(name)


def test_the_openapi_documents_describe_what_the_service_does(target: Target, tmp_path: Path) -> None:
    """Both documents at once, one schemathesis process each: the two cores stay busy, and no process runs
    generation in threads (Hypothesis' lambda descriptions race on CPython 3.11's AST parser:
    "AST constructor recursion depth mismatch")."""
    config = tmp_path / "schemathesis.toml"
    shutil.copy(FUZZ / "schemathesis.toml", config)
    (tmp_path / "site_ids.dict").write_text("".join(f'"{i}"\n' for i in target.site_ids))
    ARTIFACTS.mkdir(exist_ok=True)
    env = {**os.environ, "SCHEMATHESIS_HOOKS": "hooks",
           "PYTHONPATH": os.pathsep.join([str(FUZZ), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    runs: dict[str, tuple[subprocess.Popen[str], Path]] = {}
    for document, path in DOCUMENTS.items():
        report = ARTIFACTS / f"fuzz-{target.name}-{document}"
        cmd = [sys.executable, "-c", "import sys; from schemathesis.cli import schemathesis; sys.exit(schemathesis())",
               "--config-file", str(config), "--no-color", "run", target.url + path,
               "--checks", "all", "--max-examples", str(EXAMPLES), "--seed", str(SEED), "--workers", "1",
               "--header", f"Authorization: Bearer {target.token}",
               "--report", "junit", "--report-junit-path", str(report.with_suffix(".xml"))]
        out = report.with_suffix(".txt").open("w")
        runs[document] = (subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, text=True, env=env,
                                           cwd=tmp_path), report.with_suffix(".txt"))
        out.close()
    failed = []
    for document, (proc, text) in runs.items():
        if proc.wait(timeout=1800) != 0:
            failed.append(f"--- {document} ({text}):\n" + _failures(text.read_text()))
    assert not failed, (f"schemathesis found answers that disagree with their document on {target.name}:\n"
                        + "\n".join(failed))


def _failures(output: str) -> str:
    """The failures section of schemathesis's output, which is what a reader needs first."""
    start = output.find("=== FAILURES ===")
    start = output.find("FAILURES") if start < 0 else start
    return output[max(start, 0):][:12000]
