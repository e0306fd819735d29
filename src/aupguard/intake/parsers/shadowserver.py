"""Shadowserver reports (CSV, often zipped), driven by the report catalogue.

The report type comes from the file name (``2019-10-15-scan_dns-sample-asn.csv``,
see Shadowserver's report-filename.md) or a bare ``<type>.csv``; columns are read
by name because their order is not fixed. The catalogue (reports.json from
Shadowserver's report_schema repository) is not shipped - its licence is not
stated - so it is loaded from ``intake.shadowserver_catalogue`` when configured;
without it a built-in table covers the common report types.
"""

from __future__ import annotations

import csv
import io
import json
import re
from functools import lru_cache
from pathlib import Path

from aupguard.intake.events import ComplaintEvent, normalise_ip, normalise_port
from aupguard.intake.mime import Complaint, Part, decode_text
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.timeparse import parse_time

FILENAME = re.compile(r"^(\d{4}-\d{2}-\d{2})-([^-]+)-.+\.csv$")

CLASSIFICATION = {
    "scanner": "scan", "brute-force": "login-attack", "ddos": "ddos",
    "infected-system": "botnet", "system-compromise": "malware",
    "malware-distribution": "malware", "vulnerable-system": "vulnerable",
    "weak-crypto": "vulnerable", "potentially-unwanted-accessible": "vulnerable",
    "data-leak": "vulnerable", "blocklist": "blocklist", "spam": "spam",
    "masquerade": "phishing",
}
# Open services that reflect and amplify traffic: the harm is floods, not the scan.
AMPLIFIERS = {
    "dns", "ntp", "ntpmonitor", "ssdp", "chargen", "qotd", "memcached", "snmp", "portmapper",
    "mdns", "ldap_udp", "ws_discovery", "netbios", "ubiquiti", "xdmcp", "coap",
    "dvr_dhcpdiscover", "slp", "stun", "tftp", "rdpeudp", "loop_dos", "ddos_middlebox",
    "nat_pmp", "sip",
}
# Built-in fallback when no catalogue is configured: the common report types.
BUILTIN = {
    "event4_sinkhole": "botnet", "event6_sinkhole": "botnet", "event4_sinkhole_http": "botnet",
    "event6_sinkhole_http": "botnet", "event4_sinkhole_dns": "botnet",
    "event4_microsoft_sinkhole": "botnet", "event4_microsoft_sinkhole_http": "botnet",
    "event4_honeypot_brute_force": "login-attack", "event4_ddos_participant": "ddos",
    "event4_honeypot_ddos_amp": "ddos", "event4_ip_spoofer": "forgery",
    "compromised_website": "malware", "compromised_iot": "malware", "malware_url": "malware",
    "spam_url": "spam", "blocklist": "blocklist", "ransomware_victim": "malware",
}


def report_category(report_type: str, entry: dict | None) -> str:
    if entry:
        category = CLASSIFICATION.get(entry.get("classification.type", ""))
        if category == "vulnerable":
            service = report_type.split("_", 1)[1] if "_" in report_type else ""
            return "amplifier" if service in AMPLIFIERS else "vulnerable"
        if category:
            return category
    if report_type in BUILTIN:
        return BUILTIN[report_type]
    name = report_type
    if "brute_force" in name:
        return "login-attack"
    if "ddos" in name:
        return "ddos"
    if "sinkhole" in name:
        return "botnet"
    if name.startswith("event") and "scan" in name:
        return "scan"
    if name.startswith(("scan", "population", "device_id")):
        service = name.split("_", 1)[1] if "_" in name else ""
        return "amplifier" if service in AMPLIFIERS else "vulnerable"
    if "compromised" in name or "malware" in name or "sandbox" in name:
        return "malware"
    return "unknown"


@lru_cache(maxsize=4)
def load_catalogue(path: str) -> dict:
    """reports.json as {report type: entry}; empty dict when not configured."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected an object of report types")
    return data


def report_type_of(filename: str, catalogue: dict) -> tuple[str | None, str | None]:
    """(report type, report date) from a Shadowserver file name."""
    base = filename.rsplit("/", 1)[-1]
    match = FILENAME.match(base)
    if match:
        return match.group(2), match.group(1)
    stem = base[:-4] if base.lower().endswith(".csv") else base
    if stem in catalogue or stem in BUILTIN or re.fullmatch(r"(event[46]|scan6?)_\w+", stem):
        return stem, None
    return None, None


def _csv_parts(complaint: Complaint, catalogue: dict) -> list[tuple[Part, str, str | None]]:
    found = []
    for part in complaint.parts:
        if part.enclosed:
            continue
        name = part.filename or ""
        if not (name.lower().endswith(".csv") or part.content_type == "text/csv"):
            continue
        rtype, rdate = report_type_of(name, catalogue)
        if rtype:
            found.append((part, rtype, rdate))
    return found


@register
class ShadowserverParser:
    name = "shadowserver"

    def detect(self, complaint: Complaint) -> int:
        if _csv_parts(complaint, {}):
            return 90
        if complaint.sender.endswith("shadowserver.org"):
            return 85
        return 0

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        catalogue = ctx.shadowserver_catalogue or {}
        parts = _csv_parts(complaint, catalogue)
        if not parts:
            ctx.errors.append("Shadowserver mail without a CSV attachment (the report is only "
                              "linked; aupguard never fetches links)")
            return []
        events: list[ComplaintEvent] = []
        for part, rtype, _ in parts:
            entry = catalogue.get(rtype)
            if catalogue and entry is None:
                ctx.errors.append(f"report type {rtype!r} is not in the Shadowserver catalogue; "
                                  "columns read by name")
            events.extend(self._rows(part, rtype, entry, ctx))
            if len(events) > ctx.max_events:
                break
        return events

    @staticmethod
    def _read(text: str, names: list[str], part: Part, ctx: ParseContext) -> list[dict] | None:
        """Rows as dicts. Arrow's reader for big reports (vectorised, multi-threaded); the
        csv module for the usual small ones, where Arrow's setup costs 60x more."""
        if len(text) < 1_000_000:
            rows, bad = [], 0
            try:
                for row in csv.DictReader(io.StringIO(text, newline="")):
                    if None in row:      # more fields than the header: malformed
                        bad += 1
                    else:
                        rows.append(row)
            except csv.Error as exc:
                ctx.errors.append(f"{part.filename}: unreadable CSV after {len(rows)} rows: "
                                  f"{exc}"[:300])
            if bad:
                ctx.errors.append(f"{part.filename}: {bad} malformed CSV row(s) skipped")
            return rows
        import pyarrow as pa
        from pyarrow import csv as pacsv

        skipped: list = []
        try:
            table = pacsv.read_csv(
                io.BytesIO(text.encode("utf-8")),
                convert_options=pacsv.ConvertOptions(
                    column_types={n: pa.string() for n in names}),
                parse_options=pacsv.ParseOptions(
                    newlines_in_values=True,
                    invalid_row_handler=lambda row: skipped.append(row.number) or "skip"))
        except (pa.ArrowInvalid, pa.ArrowException) as exc:
            ctx.errors.append(f"{part.filename}: unreadable CSV: {exc}"[:300])
            return None
        if skipped:
            ctx.errors.append(f"{part.filename}: {len(skipped)} malformed CSV row(s) skipped "
                              f"(first at line {skipped[0]})")
        return table.slice(0, ctx.max_events + 1).to_pylist()

    def _rows(self, part: Part, rtype: str, entry: dict | None,
              ctx: ParseContext) -> list[ComplaintEvent]:
        # Arrow needs valid UTF-8: decode with fallbacks (some reports are Latin-1) first.
        text = decode_text(part.data.lstrip(b"\xef\xbb\xbf"), "utf-8")
        names = next(csv.reader([text.split("\n", 1)[0]]), [])
        if not names or len(set(names)) != len(names):
            ctx.errors.append(f"{part.filename}: missing or duplicated CSV header")
            return []
        rows = self._read(text, names, part, ctx)
        if rows is None:
            return []
        ip_col = next((c for c in ("src_ip", "ip") if c in names), None)
        if ip_col is None or "timestamp" not in names:
            ctx.errors.append(f"{part.filename}: no ip/src_ip or timestamp column")
            return []
        port_col = next((c for c in ("src_port", "port") if c in names), None)
        category = report_category(rtype, entry)
        rows = rows[:ctx.max_events + 1]
        events = []
        for number, row in enumerate(rows, start=2):
            ip = normalise_ip(row.get(ip_col))
            if ip is None:
                ctx.errors.append(f"{part.filename} row {number}: {ip_col} "
                                  f"{str(row.get(ip_col))[:60]!r} is not an address; skipped")
                continue
            when, _ = parse_time(row.get("timestamp"))
            shown = ", ".join(f"{k}={v}" for k, v in row.items() if v not in (None, ""))
            events.append(ComplaintEvent(
                ip=ip, port=normalise_port(row.get(port_col)) if port_col else None,
                time=when, category=category, parser=self.name,
                excerpt=excerpt(f"report {rtype}: {shown}", ctx.excerpt_chars),
                domain=(row.get("hostname") or row.get("src_hostname") or "").strip("-")[:255],
                extra={"report_type": rtype, "infection": row.get("infection") or "",
                       "tag": row.get("tag") or ""}))
        return events
