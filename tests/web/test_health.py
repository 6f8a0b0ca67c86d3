"""/healthz, /readyz and /metrics through the Flask test client (docs/operations.md)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import func, select, text

from catalog.errors import UsageError
from engine.migrate import head
from engine.models import OutboxMessage, Request, Timer
from tests.acme import ACME, ACME_ANSWERS
from tests.web.conftest import make_app
from web import create_app

OTHER_HOST = {"REMOTE_ADDR": "10.0.0.5"}


def samples(client, name: str, **headers) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample called `name` on /metrics, keyed by its sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    return {tuple(sorted(s.labels.items())): s.value
            for family in text_string_to_metric_families(response.get_data(as_text=True))
            for s in family.samples if s.name == name}


def execute(app, sql: str) -> None:
    from web.extensions import db

    with app.app_context(), db.engine.begin() as conn:
        conn.execute(text(sql))


# ---------------------------------------------------------------- /healthz and /readyz

def test_healthz_says_ok_without_sign_in(client):
    response = client.get("/healthz")
    assert (response.status_code, response.get_json()) == (200, {"status": "ok"})
    assert response.headers["Cache-Control"] == "no-store"


def test_readyz_is_ready_when_database_migrations_and_catalog_are(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ready",
                                   "checks": {"database": "ok", "migrations": "ok", "catalog": "ok"}}


def test_a_database_behind_on_migrations_is_not_ready_and_says_so(app, client):
    execute(app, "UPDATE alembic_version SET version_num = '0022'")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "not ready",
        "checks": {"database": "ok", "migrations": f"behind: database at 0022, code at {head()}",
                   "catalog": "ok"}}


def test_a_database_from_a_newer_deskflow_is_not_ready(app, client):
    execute(app, "UPDATE alembic_version SET version_num = '9999'")
    assert client.get("/readyz").get_json()["checks"]["migrations"] == \
        f"ahead: database at 9999, which this code does not know (code at {head()})"


def test_a_database_without_schema_is_not_ready(app, client):
    execute(app, "DELETE FROM alembic_version")
    assert client.get("/readyz").get_json()["checks"]["migrations"] == \
        f"no schema: the database has no Deskflow schema, code at {head()}"


def test_an_unreadable_database_fails_readyz_but_not_healthz(app, client, tmp_path):
    from web.extensions import db

    for name in ("deskflow.sqlite-wal", "deskflow.sqlite-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    (tmp_path / "deskflow.sqlite").write_bytes(b"this is not a database" * 100)
    with app.app_context():
        db.engine.dispose()
    assert client.get("/healthz").status_code == 200
    response = client.get("/readyz")
    body = response.get_data(as_text=True)
    assert response.status_code == 503
    assert response.get_json() == {
        "status": "not ready",
        "checks": {"database": "unreachable: file is not a database",
                   "migrations": "unknown: the database did not answer", "catalog": "ok"}}
    assert "Traceback" not in body
    # the metrics still answer, and say the database did not
    assert samples(client, "deskflow_database_up") == {(): 0.0}


def test_health_answers_while_the_rate_limiter_refuses_everything_else(tmp_path, template_db):
    shutil.copy(template_db, tmp_path / "deskflow.sqlite")
    app = create_app({"TESTING": True, "SECRET_KEY": "test", "DESKFLOW_CATALOG": str(ACME),
                      "DESKFLOW_DATABASE_URL": f"sqlite:///{tmp_path / 'deskflow.sqlite'}",
                      "DESKFLOW_SECURE_COOKIES": False, "RATELIMIT_ENABLED": True,
                      "RATELIMIT_APPLICATION": "2/minute"}, instance_path=str(tmp_path / "instance"))
    client = app.test_client()
    assert [client.get("/login").status_code for _ in range(3)] == [200, 200, 429]
    assert {client.get(url).status_code for url in ["/healthz", "/readyz", "/metrics"] * 5} == {200}


# ---------------------------------------------------------------- /metrics: what it counts

def test_requests_are_counted_by_route_template_method_and_status(app, client, auth, service):
    number = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"])).number
    client.get("/healthz")
    client.get("/healthz")
    client.get("/no/such/page")
    auth.login("alice")
    assert client.get(f"/requests/{number}").status_code == 200
    counts = samples(client, "deskflow_http_requests_total")
    assert counts[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 2
    assert counts[(("method", "GET"), ("route", "unmatched"), ("status", "404"))] == 1
    assert counts[(("method", "GET"), ("route", "/requests/<number>"), ("status", "200"))] == 1
    assert not [labels for labels in counts if ("route", f"/requests/{number}") in labels]
    durations = samples(client, "deskflow_http_request_duration_seconds_count")
    assert durations[(("method", "GET"), ("route", "/healthz"))] == 2


def test_records_gauge_counts_the_records_by_kind_and_status(app, client, service):
    for _ in range(2):
        service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"]))
    service.submit("new-laptop", "alice", dict(ACME_ANSWERS["new-laptop"]))
    from web.extensions import db

    with app.app_context():
        expected = {(("kind", kind), ("state", status)): float(n) for kind, status, n in db.session.execute(
            select(Request.record_type, Request.status, func.count())
            .group_by(Request.record_type, Request.status))}
    assert expected[(("kind", "incident"), ("state", "open"))] == 2
    assert samples(client, "deskflow_records") == expected


def test_dead_letters_and_an_overdue_timer_show_for_alerting(app, client, service):
    record = service.submit("report-incident", "alice", dict(ACME_ANSWERS["report-incident"]))
    now = datetime.now(UTC)
    from web.extensions import db

    with app.app_context():
        s = db.session()
        s.add(OutboxMessage(kind="webhook", event="test", idempotency_key="health-dead", payload={},
                            status="dead", attempts=8, next_attempt_at=now, created_at=now))
        s.add(Timer(request_id=record.id, kind="wait", visit=1, due_at=now - timedelta(minutes=10),
                    status="pending"))
        s.commit()
    assert samples(client, "deskflow_outbox_messages")[(("kind", "webhook"), ("status", "dead"))] == 1
    [lag] = samples(client, "deskflow_timer_lag_seconds").values()
    assert 600 <= lag < 700
    assert samples(client, "deskflow_sla_breached_open_records") == {(): 0.0}


# ---------------------------------------------------------------- /metrics: who may read it

def test_metrics_are_local_only_by_default(client):
    assert client.get("/metrics").status_code == 200
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    response = client.get("/metrics", environ_base=OTHER_HOST)
    assert (response.status_code, response.get_data(as_text=True)) == \
        (403, "Metrics are served to this host only (DESKFLOW_METRICS=local).\n")


def test_local_means_the_client_behind_a_trusted_proxy(tmp_path, template_db, monkeypatch):
    monkeypatch.setenv("DESKFLOW_TRUSTED_PROXIES", "1")
    client = make_app(tmp_path, template_db).test_client()
    assert client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert client.get("/metrics", headers={"X-Forwarded-For": "127.0.0.1"}).status_code == 200


def test_metrics_can_be_turned_off(app, client):
    app.config["DESKFLOW_METRICS"] = "off"
    response = client.get("/metrics")
    assert (response.status_code, response.get_data(as_text=True)) == \
        (404, "Metrics are turned off (DESKFLOW_METRICS=off).\n")


def test_a_metrics_token_lets_any_host_in_with_it_and_nobody_without(tmp_path, template_db, monkeypatch):
    monkeypatch.setenv("DESKFLOW_METRICS", "token:s3cret-scrape")
    client = make_app(tmp_path, template_db).test_client()
    refused = "Metrics need 'Authorization: Bearer <token>' with the metrics token.\n"
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "Basic s3cret-scrape"}):
        response = client.get("/metrics", headers=headers, environ_base=OTHER_HOST)
        assert (response.status_code, response.get_data(as_text=True)) == (403, refused)
    assert client.get("/metrics", headers={"Authorization": "Bearer s3cret-scrape"},
                      environ_base=OTHER_HOST).status_code == 200


@pytest.mark.parametrize("setting", ["on", "token:", "token:  ", "Local"])
def test_a_bad_metrics_setting_is_refused_at_start(tmp_path, template_db, monkeypatch, setting):
    monkeypatch.setenv("DESKFLOW_METRICS", setting)
    with pytest.raises(UsageError) as caught:
        make_app(tmp_path, template_db)
    assert str(caught.value) == \
        f"DESKFLOW_METRICS must be off, local or token:<secret> (not {setting.strip()!r})"


# ---------------------------------------------------------------- gunicorn: several processes

SCRAPE = """
import sys
from pathlib import Path
from tests.web.conftest import make_app
app = make_app(Path(sys.argv[1]), Path(sys.argv[2]))
client = app.test_client()
for _ in range(int(sys.argv[3])):
    client.get("/healthz")
if sys.argv[4] == "scrape":
    sys.stdout.write(client.get("/metrics").get_data(as_text=True))
"""


def test_multiprocess_mode_adds_up_the_workers_and_reads_the_database_once(tmp_path, template_db):
    shared = tmp_path / "prometheus"
    shared.mkdir()
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(shared)}
    root = Path(__file__).resolve().parents[2]

    def worker(name: str, hits: int, scrape: bool) -> str:
        return subprocess.run([sys.executable, "-c", SCRAPE, str(tmp_path / name), str(template_db),
                               str(hits), "scrape" if scrape else "-"], env=env, cwd=root, check=True,
                              capture_output=True, text=True, timeout=120).stdout

    worker("one", 3, scrape=False)
    body = worker("two", 2, scrape=True)
    families = {f.name: f for f in text_string_to_metric_families(body)}
    [healthz] = [s.value for s in families["deskflow_http_requests"].samples
                 if s.name == "deskflow_http_requests_total" and s.labels.get("route") == "/healthz"]
    assert healthz == 5
    assert [s.value for s in families["deskflow_database_up"].samples] == [1.0]
