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
        while not services.stop.wait(desk_interval):
            try:
                desk_work(settings, store)
            except Exception:
                log.exception("case handling round failed")

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
