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

from engine.delivery import Clock, deliver_due
from engine.delivery_config import DeliveryConfig
from engine.service import RequestService, utcnow
from engine.smtp import Sender
from engine.webhooks import Resolver

log = logging.getLogger(__name__)


def run_worker(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock, *,
               run_timers: Callable[[datetime], int] | None, stop: threading.Event,
               poll_interval: float = 2.0, once: bool = False, batch: int = 50,
               resolver: Resolver = socket.getaddrinfo, sender: Sender | None = None) -> int:
    """Run passes until `stop` is set (or one pass if `once`); return how many items were handled."""
    handled = 0
    log.info("worker started (poll every %ss)", poll_interval)
    while not stop.is_set():
        worked = run_pass(sessionmaker, config, now_fn, run_timers=run_timers, batch=batch,
                          resolver=resolver, sender=sender)
        handled += max(worked, 0)
        if once:
            break
        if worked <= 0:
            stop.wait(poll_interval)
    log.info("worker stopped after %d items", handled)
    return handled


def run_pass(sessionmaker: sessionmaker[Session], config: DeliveryConfig, now_fn: Clock, *,
             run_timers: Callable[[datetime], int] | None, batch: int = 50,
             resolver: Resolver = socket.getaddrinfo, sender: Sender | None = None) -> int:
    """Fire due timers and deliver one batch; return the items handled, or -1 if a step failed."""
    worked, failed = 0, False
    if run_timers is not None:
        try:
            worked += run_timers(now_fn())
        except Exception:
            log.exception("timer pass failed")
            failed = True
    try:
        counts = deliver_due(sessionmaker, config, now_fn, batch, resolver=resolver, sender=sender)
    except Exception:
        log.exception("outbox pass failed")
        failed = True
    else:
        worked += counts["claimed"]
        if counts["claimed"]:
            log.info("outbox: %s", ", ".join(f"{k}={v}" for k, v in counts.items() if v))
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
    """Fire `service`'s timers and deliver its outbox (SMTP settings from the environment)."""
    return run_worker(service.sessions, DeliveryConfig.from_env(os.environ), utcnow,
                      run_timers=service.run_due, stop=stop, poll_interval=poll_interval, once=once)


def start_in_background(service: RequestService, interval: float = 5.0,
                        name: str = "deskflow-demo-worker") -> tuple[threading.Event, threading.Thread]:
    """Run `work_for` in a daemon thread; return its stop event and the thread."""
    stop = threading.Event()
    thread = threading.Thread(target=work_for, name=name, daemon=True, args=(service, stop),
                              kwargs={"poll_interval": interval})
    thread.start()
    return stop, thread
