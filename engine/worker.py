"""The background loop behind `deskflow worker` (and the demo): fire due timers, deliver the outbox.

Every pass calls the request service's timer runner, then `deliver_due`; it sleeps
`poll_interval` only when a pass found nothing to do, so a backlog drains at full speed.
A pass that fails (the database restarting, say) is logged and retried after the
interval; nothing is lost, because timers and messages are rows. Several workers may run
at once against PostgreSQL; against SQLite run one.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
from collections.abc import Callable
from datetime import datetime
from types import FrameType

from sqlalchemy.orm import Session, sessionmaker

from engine import report_snapshots
from engine.delivery import DEAD, DELIVERED, RETRY, SKIPPED, Clock, deliver_due
from engine.delivery_config import DeliveryConfig
from engine.service import RequestService, utcnow
from engine.smtp import Sender, SmtpConnections
from engine.webhooks import Resolver

log = logging.getLogger(__name__)


def run_worker(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock, *,
               run_timers: Callable[[datetime], int] | None, stop: threading.Event,
               poll_interval: float = 2.0, once: bool = False, batch: int = 50,
               resolver: Resolver = socket.getaddrinfo, sender: Sender | None = None,
               refresh_reports: Callable[[datetime], bool] | None = None) -> int:
    """Run passes until `stop` is set (or one pass if `once`); return how many items were handled.

    Without a `sender`, emails go through SMTP connections kept open across messages and passes,
    closed when idle and when the worker stops.
    """
    handled = 0
    connections = SmtpConnections() if sender is None else None
    send = connections.send if connections is not None else sender
    log.info("worker started: polling every %ss, %d deliveries at once", poll_interval,
             config.concurrency)
    try:
        while not stop.is_set():
            worked = run_pass(sessionmaker, config, now_fn, run_timers=run_timers, batch=batch,
                              resolver=resolver, sender=send, refresh_reports=refresh_reports)
            handled += max(worked, 0)
            if once:
                break
            if worked <= 0:
                if connections is not None:
                    connections.close_idle()
                stop.wait(poll_interval)
    finally:
        if connections is not None:
            connections.close()
    log.info("worker stopped after %d items", handled)
    return handled


def run_pass(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock, *,
             run_timers: Callable[[datetime], int] | None, batch: int = 50,
             resolver: Resolver = socket.getaddrinfo, sender: Sender | None = None,
             refresh_reports: Callable[[datetime], bool] | None = None) -> int:
    """Fire due timers, deliver one batch and refresh the reports snapshot when it is due;
    return the items handled, or -1 if a step failed.

    A pass that did something logs one line: `delivered 3, retry 1, dead 0; timers fired 2`.
    A refresh logs its own line and is no item: an idle worker still sleeps between passes.
    """
    worked, failed, fired = 0, False, 0
    if refresh_reports is not None:
        try:
            if refresh_reports(now_fn()):
                log.info("refreshed the reports snapshot")
        except Exception:
            log.exception("reports refresh failed")
            failed = True
    if run_timers is not None:
        try:
            fired = run_timers(now_fn())
            worked += fired
        except Exception:
            log.exception("timer pass failed")
            failed = True
    counts: dict[str, int] = {}
    try:
        counts = deliver_due(sessionmaker, config, now_fn, batch, resolver=resolver, sender=sender)
    except Exception:
        log.exception("outbox pass failed")
        failed = True
    else:
        worked += counts["claimed"]
    if worked:
        line = ", ".join(f"{k} {counts.get(k, 0)}" for k in (DELIVERED, RETRY, DEAD))
        extra = "".join(f", {k} {counts[k]}" for k in (SKIPPED, "error") if counts.get(k))
        log.info("%s%s; timers fired %d", line, extra, fired)
    return -1 if failed and not worked else worked


def install_signal_handlers(stop: threading.Event) -> None:
    """Set `stop` on SIGTERM and SIGINT, so a pass in flight finishes before the worker exits."""
    def handle(signum: int, _frame: FrameType | None) -> None:
        log.info("received %s; stopping after this pass", signal.Signals(signum).name)
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)


def work_for(service: RequestService, stop: threading.Event, *, poll_interval: float = 2.0,
             once: bool = False) -> int:
    """Fire `service`'s timers, deliver its outbox (SMTP settings from the environment) and keep
    the unfiltered reports snapshot fresh (DESKFLOW_REPORTS_MAX_AGE; 0: no snapshots)."""
    return run_worker(service.sessions, DeliveryConfig.from_env(os.environ), utcnow,
                      run_timers=service.run_due, stop=stop, poll_interval=poll_interval, once=once,
                      refresh_reports=reports_refresher(service.sessions,
                                                        report_snapshots.max_age(os.environ)))


def reports_refresher(sessionmaker: sessionmaker[Session],
                      max_age: int) -> Callable[[datetime], bool] | None:
    """What a pass calls to refresh the unfiltered reports snapshot (None for max age 0)."""
    if max_age <= 0:
        return None

    def refresh(now: datetime) -> bool:
        with sessionmaker.begin() as s:
            return report_snapshots.refresh_unfiltered(s, now, max_age)

    return refresh


def start_in_background(service: RequestService, interval: float = 5.0,
                        name: str = "deskflow-demo-worker") -> tuple[threading.Event, threading.Thread]:
    """Run `work_for` in a daemon thread; return its stop event and the thread."""
    stop = threading.Event()
    thread = threading.Thread(target=work_for, name=name, daemon=True, args=(service, stop),
                              kwargs={"poll_interval": interval})
    thread.start()
    return stop, thread
