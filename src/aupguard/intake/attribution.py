"""Events to clients through the registry's attribution index (vectorised)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

import numpy as np

from aupguard.intake.events import ComplaintEvent
from aupguard.netaddr import strings_to_hilo


@dataclass
class Outcome:
    status: str                      # attributed | review
    client_id: str | None = None
    candidates: list[str] = field(default_factory=list)
    reason: str = ""


def attribute(index, events: list[ComplaintEvent], tolerance: timedelta) -> list[Outcome]:
    """One outcome per event. Address parsing is per event (they are already strings from
    parsers); the longest-prefix, time and port matching runs vectorised in the index."""
    outcomes: list[Outcome | None] = [None] * len(events)
    todo: list[int] = []
    for i, event in enumerate(events):
        if event.ip is None:
            outcomes[i] = Outcome("review", reason="no address in the complaint")
        elif event.time is None:
            outcomes[i] = Outcome("review", reason="no time in the complaint")
        elif event.time_uncertainty > tolerance.total_seconds():
            outcomes[i] = Outcome("review", reason=f"time too vague (±{event.time_uncertainty}s)")
        else:
            todo.append(i)
    if not todo:
        return outcomes  # type: ignore[return-value]
    hi, lo = strings_to_hilo(events[i].ip for i in todo)
    t_ms = np.fromiter((int(events[i].time.timestamp() * 1000) for i in todo), np.int64,
                       count=len(todo))
    slack = np.fromiter((events[i].time_uncertainty * 1000 for i in todo), np.int64,
                        count=len(todo))
    ports = np.fromiter((events[i].port if events[i].port is not None else -1 for i in todo),
                        np.int32, count=len(todo))
    codes = index.lookup(hi, lo, t_ms, ports)
    # A time known to ±u must give the same holder at both ends of the window.
    vague = slack > 0
    if vague.any():
        early = index.lookup(hi[vague], lo[vague], (t_ms - slack)[vague], ports[vague])
        late = index.lookup(hi[vague], lo[vague], (t_ms + slack)[vague], ports[vague])
        changed = np.zeros(len(todo), dtype=bool)
        changed[vague] = (early != codes[vague]) | (late != codes[vague])
    else:
        changed = np.zeros(len(todo), dtype=bool)
    for j, i in enumerate(todo):
        code = int(codes[j])
        if code >= 0 and not changed[j]:
            outcomes[i] = Outcome("attributed", index.client_ids[code], [index.client_ids[code]])
        elif code >= 0:
            outcomes[i] = Outcome("review", candidates=[index.client_ids[code]],
                                  reason="time too vague: the address changed hands within "
                                  f"±{events[i].time_uncertainty}s")
        elif code == -2 or (code == -1 and changed[j]):
            answer = index.who(events[i].ip, events[i].time, events[i].port)
            outcomes[i] = Outcome("review", candidates=list(answer.candidates),
                                  reason="ambiguous: more than one client held the address"
                                  + ("" if events[i].port is not None else
                                     " (no source port to tell CGNAT users apart)"))
        else:
            outcomes[i] = Outcome("review", reason="no client held this address at that time")
    return outcomes  # type: ignore[return-value]
