"""Per-exporter decode counters (what `aupguard collect --stats` and Prometheus show)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

log = logging.getLogger("aupguard.flows.decode")

# What each error kind means and what to do about it (shown in the log, and in docs).
ERROR_HELP = {
    "truncated_header": "datagram shorter than its version's header: cut in transit, or not flow export",
    "unknown_version": "not NetFlow v5/v9, IPFIX or sFlow v5: check what this exporter sends to the port",
    "length_mismatch": "IPFIX message length disagrees with the datagram; the datagram was skipped",
    "set_length": "a set length is under 4 or runs past the datagram; the rest of it was skipped",
    "reserved_set_id": "set id 2-255 (v9) / 4-255 (IPFIX) is reserved; the set was skipped",
    "template_truncated": "a template runs past its set; the rest of the set was skipped",
    "bad_template": "unusable template (no bytes, over 65535 bytes, bad scope); its data will wait",
    "bad_template_id": "template id under 256; skipped",
    "too_many_templates": "template table full (spoofed exporters?); new templates are refused",
    "varlen_truncated": "a variable-length field runs past its set; records before it were kept",
    "truncated_records": "v5 header counts more records than the datagram holds; whole ones kept",
    "pending_overflow": "more data waiting for templates than max_pending; oldest dropped. "
    "Does the exporter send templates? Raise [flows] max_pending if it is slow to.",
    "bad_exporter": "exporter is not an IP address (a collector bug)",
}


@dataclass
class ExporterStats:
    datagrams: int = 0
    records: int = 0  # flow records emitted (after release from pending)
    errors: dict[str, int] = field(default_factory=dict)
    pending: int = 0  # data records (estimated) waiting for a template
    dropped_pending: int = 0  # held records evicted because max_pending was reached
    sequence_gaps: int = 0  # datagrams/records missing according to sequence numbers
    templates: int = 0  # templates currently known
    options_records: int = 0  # options data records read (sampling, system init time)
    counter_samples: int = 0  # sFlow counter samples seen (counted, not decoded)

    def as_dict(self) -> dict:
        return {
            "datagrams": self.datagrams,
            "records": self.records,
            "errors": dict(self.errors),
            "pending": self.pending,
            "dropped_pending": self.dropped_pending,
            "sequence_gaps": self.sequence_gaps,
            "templates": self.templates,
            "options_records": self.options_records,
            "counter_samples": self.counter_samples,
        }


class DecodeStats:
    """Counters keyed by exporter address text; ``.total`` sums them."""

    def __init__(self) -> None:
        self.exporters: dict[str, ExporterStats] = {}
        self._logged: set[str] = set()

    def __getitem__(self, exporter: str) -> ExporterStats:
        return self.for_exporter(exporter)

    def for_exporter(self, exporter: str) -> ExporterStats:
        st = self.exporters.get(exporter)
        if st is None:
            st = self.exporters[exporter] = ExporterStats()
        return st

    def error(self, exporter: str, kind: str, detail: str = "", count: int = 1) -> None:
        """Count a decode error; log the first of each kind (a flood must not flood the log)."""
        errs = self.for_exporter(exporter).errors
        errs[kind] = errs.get(kind, 0) + count
        if kind not in self._logged:
            self._logged.add(kind)
            help_ = ERROR_HELP.get(kind) or (
                "malformed sFlow datagram; skipped whole" if kind.startswith("sflow_") else ""
            )
            log.warning(
                "flow decode error %s from %s: %s. %s (further ones are counted, not logged)",
                kind,
                exporter,
                detail or kind,
                help_,
            )

    @property
    def total(self) -> ExporterStats:
        tot = ExporterStats()
        for st in self.exporters.values():
            tot.datagrams += st.datagrams
            tot.records += st.records
            tot.pending += st.pending
            tot.dropped_pending += st.dropped_pending
            tot.sequence_gaps += st.sequence_gaps
            tot.templates += st.templates
            tot.options_records += st.options_records
            tot.counter_samples += st.counter_samples
            for k, v in st.errors.items():
                tot.errors[k] = tot.errors.get(k, 0) + v
        return tot

    @property
    def errors(self) -> dict[str, int]:
        return self.total.errors

    def as_dict(self) -> dict:
        return {
            "total": self.total.as_dict(),
            "exporters": {k: v.as_dict() for k, v in sorted(self.exporters.items())},
        }
