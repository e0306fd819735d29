"""X-ARF 0.1/0.2 (a YAML report part), XARF v3 JSON and XARF v4 JSON (schema-validated)."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from aupguard.intake.events import ComplaintEvent, normalise_ip, normalise_port
from aupguard.intake.mime import Complaint, Part
from aupguard.intake.parsers.base import ParseContext, excerpt, register
from aupguard.intake.parsers.freetext import categorise
from aupguard.intake.timeparse import parse_time

SHIPPED_SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "xarf-v4"
MAX_YAML = 64 * 1024
_YAML_ANCHOR = re.compile(r"(?:^|[\s\[{,:-])[&*][^\s]+")

# X-ARF 0.x: (Category, Report-Type) vocabulary -> canonical category.
XARF0_TYPES = {
    "login-attack": "login-attack", "bruteforcelogin": "login-attack", "ssh": "login-attack",
    "ftp": "login-attack", "imap": "login-attack", "pop3": "login-attack",
    "regbot": "spam", "spam": "spam", "harvesting": "spam", "mail": "spam",
    "phishing": "phishing", "malware": "malware", "ddos": "ddos", "port-scan": "scan",
    "portscan": "scan", "scan": "scan", "bot": "botnet", "botnet": "botnet",
    "copyright": "copyright", "child-abuse": "csam", "sql-injection": "exploit",
    "webattack": "exploit", "apache": "exploit",
}
XARF0_CATEGORIES = {"fraud": "phishing", "abuse": "unknown", "info": "unknown",
                    "private": "unknown", "malware": "malware"}
XARF3_TYPES = {
    "spam": "spam", "copyright": "copyright", "childabuse": "csam", "loginattack": "login-attack",
    "portscan": "scan", "ddos": "ddos", "phishing": "phishing", "malware": "malware",
    "bot": "botnet", "fraud": "fraud", "vulnerability": "vulnerable", "hacking": "exploit",
    "sqlinjection": "exploit", "harassment": "harassment",
}
XARF4_TYPES = {
    ("connection", "login_attack"): "login-attack", ("connection", "port_scan"): "scan",
    ("connection", "reconnaissance"): "scan", ("connection", "vulnerability_scan"): "scan",
    ("connection", "scraping"): "scan", ("connection", "ddos"): "ddos",
    ("connection", "infected_host"): "botnet", ("connection", "sql_injection"): "exploit",
    ("content", "phishing"): "phishing", ("content", "malware"): "malware",
    ("content", "csam"): "csam", ("content", "csem"): "csam", ("content", "fraud"): "fraud",
    ("content", "exposed_data"): "privacy", ("content", "brand_infringement"): "copyright",
    ("content", "remote_compromise"): "malware",
    ("content", "suspicious_registration"): "fraud",
    ("infrastructure", "botnet"): "botnet", ("infrastructure", "compromised_server"): "malware",
    ("reputation", "blocklist"): "blocklist", ("reputation", "threat_intelligence"): "blocklist",
}
XARF4_CATEGORIES = {"messaging": "spam", "copyright": "copyright", "vulnerability": "vulnerable"}


def safe_yaml(text: str) -> dict | None:
    """A YAML mapping with every scalar left as a string; anchors refused (alias bombs)."""
    if len(text) > MAX_YAML or _YAML_ANCHOR.search(text):
        return None
    body = text.strip()
    if body.endswith("..."):
        body = body[:-3]
    loader = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # libyaml when available: 10x faster
    try:
        data = yaml.load(body, Loader=loader)  # noqa: S506 - BaseLoader builds no objects
    except yaml.YAMLError:
        return None
    return data if isinstance(data, dict) else None


_XARF0_KEYS = re.compile(r"^(?:report-type|category|source|ip|reported-from):", re.I | re.M)


def _json_parts(complaint: Complaint) -> list[tuple[Part, Any]]:
    # detect() and parse() both ask: decode each part once per complaint.
    if "xarf_json" in complaint.cache:
        return complaint.cache["xarf_json"]
    found = []
    for part in complaint.parts:
        if part.enclosed or len(part.data) > 4 * 1024 * 1024:
            continue
        head = part.data.lstrip()[:1]
        if part.content_type == "application/json" or head == b"{":
            try:
                found.append((part, json.loads(part.text)))
            except (ValueError, RecursionError):
                continue
    complaint.cache["xarf_json"] = found
    return found


def _yaml_parts(complaint: Complaint) -> list[tuple[Part, dict]]:
    if "xarf_yaml" in complaint.cache:
        return complaint.cache["xarf_yaml"]
    found = []
    for part in complaint.parts:
        if part.enclosed or not part.content_type.startswith("text/"):
            continue
        # Cheap checks first: YAML is only tried on "---" parts with X-ARF-looking keys.
        if not part.text.lstrip().startswith("---") or not _XARF0_KEYS.search(part.text):
            continue
        data = safe_yaml(part.text)
        if data and (_lower_keys(data).keys() & {"report-type", "category", "source", "ip"}):
            found.append((part, data))
    complaint.cache["xarf_yaml"] = found
    return found


def _lower_keys(data: dict) -> dict:
    return {str(k).lower(): v for k, v in data.items()}


def _is_v3(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("Version")) == "3" and "Report" in doc


def _is_v4(doc: Any) -> bool:
    return isinstance(doc, dict) and str(doc.get("xarf_version", "")).startswith("4")


@lru_cache(maxsize=4)
def _v4_schemas(schema_dir: str = ""):
    """(registry, master schema, {(category, type): type schema}) from the schema folder."""
    from referencing import Registry, Resource

    root = Path(schema_dir) if schema_dir else SHIPPED_SCHEMAS
    resources, by_type, master = [], {}, None
    for path in root.rglob("*.json"):
        contents = json.loads(path.read_text(encoding="utf-8"))
        resources.append((contents["$id"], Resource.from_contents(contents)))
        if path.name == "xarf-v4-master.json":
            master = contents
        elif path.parent.name == "types":
            props: dict = {}
            for part in contents.get("allOf", []):
                if isinstance(part, dict):
                    props.update(part.get("properties", {}))
            type_name = props.get("type", {}).get("const")
            if type_name:
                by_type[(path.name.split("-", 1)[0], type_name)] = contents
    if master is None:
        raise FileNotFoundError(f"xarf-v4-master.json not found under {root}")
    return Registry().with_resources(resources), master, by_type


@lru_cache(maxsize=64)
def v4_validator(schema_dir: str = "", category: str = "", type_name: str = ""):
    """A Draft 2020-12 validator, $refs resolved offline. A known category/type gets its
    own type schema (what the master's if/then would pick, 5x faster); anything else the
    master schema, which also rejects unknown combinations."""
    import jsonschema

    registry, master, by_type = _v4_schemas(schema_dir)
    schema = by_type.get((category, type_name), master)
    return jsonschema.Draft202012Validator(schema, registry=registry,
                                           format_checker=jsonschema.FormatChecker())


@register
class XarfParser:
    name = "xarf"

    def detect(self, complaint: Complaint) -> int:
        for _, doc in _json_parts(complaint):
            if _is_v3(doc) or _is_v4(doc):
                return 95
        if complaint.header("X-XARF") or complaint.header("X-ARF"):
            return 90
        if _yaml_parts(complaint):
            return 80 if complaint.header("Open-Arf") else 70
        return 0

    def parse(self, complaint: Complaint, ctx: ParseContext) -> list[ComplaintEvent]:
        events: list[ComplaintEvent] = []
        for part, doc in _json_parts(complaint):
            if _is_v4(doc):
                events.extend(self._v4(doc, part, ctx))
            elif _is_v3(doc):
                events.extend(self._v3(doc, part, ctx))
        if events:
            return events
        context = f"{complaint.subject} {' '.join(p.filename for p in complaint.parts)}"
        for part, doc in _yaml_parts(complaint):
            events.append(self._v0(_lower_keys(doc), part, context, ctx))
        return events

    def _v0(self, doc: dict, part: Part, context: str, ctx: ParseContext) -> ComplaintEvent:
        source = str(doc.get("source") or doc.get("ip") or "")
        source_type = str(doc.get("source-type", "")).lower()
        ip = normalise_ip(source) or normalise_ip(str(doc.get("ip", "")))
        url = str(doc.get("uri") or (source if source_type == "uri" else ""))
        report_type = str(doc.get("report-type", "")).lower()
        category = XARF0_TYPES.get(report_type) or XARF0_TYPES.get(
            str(doc.get("service", "")).lower())
        if not category:
            category = XARF0_CATEGORIES.get(str(doc.get("category", "")).lower(), "unknown")
        if category == "unknown":
            category = categorise(f"{report_type} {context}")
        when, zoned = parse_time(str(doc.get("date") or doc.get("first_seen") or ""))
        # X-ARF "Port" is the attacked service (blocklist.de sends 80 for a forum bot), not
        # the source port, so it must not narrow CGNAT attribution: kept as evidence only.
        return ComplaintEvent(
            ip=ip, port=None, time=when, category=category,
            parser="x-arf", excerpt=excerpt(part.text, ctx.excerpt_chars),
            time_uncertainty=0 if zoned else 14 * 3600, url=url[:2000],
            domain=str(doc.get("domain", ""))[:255],
            extra={"destination_port": normalise_port(doc.get("port")),
                   "version": str(doc.get("version", "")), "report_id":
                   str(doc.get("report-id", ""))[:200]})

    def _v3(self, doc: dict, part: Part, ctx: ParseContext) -> list[ComplaintEvent]:
        report = doc.get("Report") or {}
        if not isinstance(report, dict):
            ctx.errors.append("XARF v3: Report is not an object")
            return []
        rtype = str(report.get("ReportType", "")).lower()
        category = XARF3_TYPES.get(rtype, "unknown")
        when, _ = parse_time(str(report.get("Date") or report.get("FirstSeen") or ""))
        reporter = doc.get("ReporterInfo") or {}
        return [ComplaintEvent(
            ip=normalise_ip(str(report.get("SourceIp", ""))),
            port=normalise_port(report.get("SourcePort")), time=when, category=category,
            parser="xarf-v3", excerpt=excerpt(part.text, ctx.excerpt_chars),
            url=str(report.get("SourceUrl", ""))[:2000],
            reporter=str(reporter.get("ReporterOrgEmail", ""))[:254] if isinstance(
                reporter, dict) else "",
            extra={"report_type": rtype, "first_seen": str(report.get("FirstSeen", ""))})]

    def _v4(self, doc: dict, part: Part, ctx: ParseContext) -> list[ComplaintEvent]:
        try:
            validator = v4_validator(ctx.xarf_schema_dir, str(doc.get("category", "")),
                                     str(doc.get("type", "")))
            problems = sorted(validator.iter_errors(doc), key=lambda e: list(e.path))[:5]
        except (OSError, ValueError, KeyError) as exc:
            problems = []
            ctx.errors.append(f"XARF v4 schemas unavailable ({exc}); report not validated")
        for problem in problems:
            where = "/".join(str(p) for p in problem.path) or "(top)"
            ctx.errors.append(f"XARF v4 schema: {where}: {problem.message[:200]}")
        category_name = str(doc.get("category", "")).lower()
        type_name = str(doc.get("type", "")).lower()
        category = XARF4_TYPES.get((category_name, type_name)) or XARF4_CATEGORIES.get(
            category_name, "unknown")
        source = str(doc.get("source_identifier", ""))
        ip = normalise_ip(source)
        when, _ = parse_time(str(doc.get("timestamp", "")))
        reporter = doc.get("reporter") if isinstance(doc.get("reporter"), dict) else {}
        return [ComplaintEvent(
            ip=ip, port=normalise_port(doc.get("source_port")), time=when, category=category,
            parser="xarf-v4", excerpt=excerpt(part.text, ctx.excerpt_chars),
            url=str(doc.get("url", ""))[:2000],
            domain=(str(doc.get("domain", "")) or ("" if ip else source))[:255],
            reporter=str(reporter.get("contact", ""))[:254],
            extra={"report_id": str(doc.get("report_id", ""))[:100], "type": type_name,
                   "valid": not problems})]
