"""Prometheus metrics: HTTP requests counted by route, and the database's figures read at scrape time.

Under gunicorn, set PROMETHEUS_MULTIPROC_DIR (an empty folder, before the app starts): every worker
then writes its request counts there and a scrape adds them up (prometheus_client's multiprocess
mode); the database figures are read once per scrape, never per worker.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from flask import Flask, Response, g, request
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    ProcessCollector,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from sqlalchemy import case, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from engine.models import ImportRun, MailReceipt, OutboxMessage, Request, Timer

log = logging.getLogger("deskflow.web")

#: the route label of a request no URL rule matched (its raw path would explode the series)
UNMATCHED = "unmatched"
#: outbox messages still to deliver, and the ones given up on
BACKLOG = ("pending", "sending", "dead")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or os.environ.get("prometheus_multiproc_dir")


@dataclass(frozen=True, slots=True)
class AppMetrics:
    """One app's HTTP metrics and how to read its database's figures."""

    registry: CollectorRegistry
    requests: Counter
    duration: Histogram
    database: DatabaseCollector

    def scrape(self) -> bytes:
        """The text exposition of every metric, summed over workers in multiprocess mode."""
        if multiprocess_dir() is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(self.database)
        return generate_latest(registry)


def init_app(app: Flask, sessions: sessionmaker[Session]) -> AppMetrics:
    """Count every request of `app` (from before any other hook runs) and keep its metrics."""
    disable_created_metrics()  # no `_created` twin of every series
    registry = CollectorRegistry()
    metrics = AppMetrics(
        registry,
        Counter("deskflow_http_requests", "HTTP requests answered, by route, method and status.",
                ("route", "method", "status"), registry=registry),
        Histogram("deskflow_http_request_duration_seconds", "Time to answer an HTTP request.",
                  ("route", "method"), registry=registry),
        DatabaseCollector(sessions))
    registry.register(metrics.database)
    if multiprocess_dir() is None:
        ProcessCollector(registry=registry)
    app.extensions["deskflow_metrics"] = metrics

    def start_clock() -> None:
        g.deskflow_started = time.perf_counter()

    def count(response: Response) -> Response:
        rule = request.url_rule
        route = rule.rule if rule is not None else UNMATCHED
        metrics.requests.labels(route, request.method, str(response.status_code)).inc()
        started = g.pop("deskflow_started", None)
        if started is not None:
            metrics.duration.labels(route, request.method).observe(time.perf_counter() - started)
        return response

    # first, so the time includes every other hook and a request they refuse is counted too
    app.before_request_funcs.setdefault(None, []).insert(0, start_clock)
    app.after_request(count)
    return metrics


def metrics_of(app: Flask) -> AppMetrics:
    return app.extensions["deskflow_metrics"]  # type: ignore[no-any-return]


class DatabaseCollector(Collector):
    """Records, outbox backlog, timer lag, SLA breaches, imports and mail-in, read per scrape
    with a few GROUP BY queries on indexed columns."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    def describe(self) -> list[Metric]:
        return []  # read the database only when scraped, never when registered

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("deskflow_database_up",
                               "1 when the metrics could be read from the database, else 0.")
        try:
            with self.sessions() as session:
                found = list(self._read(session, datetime.now(UTC)))
        except SQLAlchemyError as exc:
            log.warning("metrics: cannot read the database: %s",
                        str(getattr(exc, "orig", None) or exc).strip().splitlines()[0])
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from found

    def _read(self, s: Session, now: datetime) -> Iterator[Metric]:
        records = GaugeMetricFamily("deskflow_records", "Records by kind and status (open or closed).",
                                    labels=("kind", "state"))
        for kind, status, n in s.execute(select(Request.record_type, Request.status, func.count())
                                         .group_by(Request.record_type, Request.status)):
            records.add_metric([kind, status], n)
        yield records

        outbox = GaugeMetricFamily("deskflow_outbox_messages",
                                   "Outbox messages to deliver (pending, sending) and dead letters.",
                                   labels=("kind", "status"))
        for kind, status, n in s.execute(select(OutboxMessage.kind, OutboxMessage.status, func.count())
                                         .where(OutboxMessage.status.in_(BACKLOG))
                                         .group_by(OutboxMessage.kind, OutboxMessage.status)):
            outbox.add_metric([kind, status], n)
        yield outbox

        oldest = s.scalar(select(func.min(Timer.due_at)).where(Timer.status == "pending"))
        lag = 0.0
        if oldest is not None:
            oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)
            lag = max(0.0, (now - oldest).total_seconds())
        yield GaugeMetricFamily("deskflow_timer_lag_seconds",
                                "How long the oldest pending timer is overdue (0: none is).", value=lag)

        breached = dict(s.execute(select(Request.status, func.count())
                                  .where(Request.sla_state == "breached").group_by(Request.status)).all())
        yield CounterMetricFamily("deskflow_sla_breaches", "Records whose SLA was breached, open or closed.",
                                  value=sum(breached.values()))
        yield GaugeMetricFamily("deskflow_sla_breached_open_records", "Open records past their SLA.",
                                value=breached.get("open", 0))

        runs = GaugeMetricFamily("deskflow_import_runs", "Import runs by source: finished, or unfinished "
                                 "(running or interrupted).", labels=("source", "status"))
        last = GaugeMetricFamily("deskflow_import_last_finished_timestamp_seconds",
                                 "When the last import run of a source finished (Unix time).",
                                 labels=("source",))
        unfinished = case((ImportRun.finished_at.is_(None), 1), else_=0)
        for source, total, open_runs, finished in s.execute(
                select(ImportRun.source, func.count(), func.sum(unfinished), func.max(ImportRun.finished_at))
                .group_by(ImportRun.source)):
            runs.add_metric([source, "finished"], total - (open_runs or 0))
            runs.add_metric([source, "unfinished"], open_runs or 0)
            if finished is not None:
                finished = finished if finished.tzinfo else finished.replace(tzinfo=UTC)
                last.add_metric([source], finished.timestamp())
        yield runs
        yield last

        mail = CounterMetricFamily("deskflow_mail_in_messages", "Inbound emails handled, by outcome.",
                                   labels=("outcome",))
        for outcome, n in s.execute(select(MailReceipt.outcome, func.count()).group_by(MailReceipt.outcome)):
            mail.add_metric([outcome], n)
        yield mail
