"""`aupguard run`: collection, enrichment, storage, detection, the abuse mailbox,
case handling and the console in one process.

Each part is the same class its own command runs (``aupguard collect``,
``aupguard intake serve``, ``aupguard web``); this module only starts them
together and runs the periodic desk work (grouping incidents into cases,
deadlines, outbox delivery) on a timer thread.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timedelta, timezone
from dataclasses import dataclass, field
from typing import Any

from aupguard.config import Settings

log = logging.getLogger("aupguard.run")


@dataclass
class Services:
    collector: Any = None
    detector: Any = None
    intake: Any = None
    stop: threading.Event = field(default_factory=threading.Event)
    threads: list[threading.Thread] = field(default_factory=list)


def desk_work(settings: Settings, store) -> Any:
    """One round of case handling: group incidents, take due ladder steps, deliver mail."""
    from aupguard.cases import service as cases

    with store.session() as session:
        return cases.periodic(session, settings)


def monitor_work(settings: Settings, store, now: datetime, last_check: datetime | None) -> bool:
    """Scheduled monitors: DNSBL check of client space, relay probes of registered mail
    servers (opt-in), overdue opt-in record requests. Returns whether a DNSBL check ran."""
    from aupguard.bulkmail.optin import escalate_overdue

    rep = settings.reputation
    with store.session() as session:
        escalate_overdue(session, now)
    checked = False
    due = last_check is None or now - last_check >= timedelta(hours=rep.check_interval_hours)
    if rep.zones and rep.check_interval_hours > 0 and due:
        from aupguard.reputation.monitor import check

        with store.session() as session:
            check(session, rep, now=now)
        checked = True
    if rep.probe_schedule:
        from aupguard.reputation.probe import probe_registered

        with store.session() as session:
            probe_registered(session, rep, now)  # rate-limited per host by probe_interval_hours
    return checked


def start(settings: Settings, store, *, flows: bool = True, intake: bool = True,
          desk_interval: float = 10.0) -> Services:
    services = Services()
    if flows:
        from aupguard.detect.detector import LiveDetector
        from aupguard.flows.collector import Collector
        from aupguard.policy.acceptance import TrafficAcceptance

        services.detector = LiveDetector(settings, store)
        services.collector = Collector(settings, store)
        services.collector.add_listener(lambda table: services.detector.process(table))
        # Traffic after a posting is acceptance of the AUP by continued use.
        services.collector.add_listener(TrafficAcceptance(store).observe)
        services.collector.start()

        def tick() -> None:
            # Ticks without traffic still end quiet incidents and withdraw mitigations.
            while not services.stop.wait(settings.detect.interval_s):
                try:
                    services.detector.tick()
                except Exception:  # keep detecting; the error is logged with its traceback
                    log.exception("detection tick failed")

        services.threads.append(threading.Thread(target=tick, name="detect-tick", daemon=True))
    if intake:
        from aupguard.intake.server import IntakeServer

        services.intake = IntakeServer(settings, store)
        services.intake.start()

    def desk() -> None:
        last_check: datetime | None = None
        while not services.stop.wait(desk_interval):
            try:
                desk_work(settings, store)
            except Exception:
                log.exception("case handling round failed")
            try:
                now = datetime.now(timezone.utc)
                if monitor_work(settings, store, now, last_check):
                    last_check = now
            except Exception:
                log.exception("scheduled monitors failed")

    services.threads.append(threading.Thread(target=desk, name="desk", daemon=True))
    for t in services.threads:
        t.start()
    return services


def stop(services: Services) -> None:
    services.stop.set()
    for t in services.threads:
        t.join(timeout=10)
    if services.intake is not None:
        services.intake.stop()
    if services.collector is not None:
        services.collector.stop()
    if services.detector is not None:
        services.detector.tick()
        services.detector.close()  # stops the ExaBGP process when mitigation is on
