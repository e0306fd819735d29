"""The demo: a sample registry, generated attacks through a real exporter, sample
complaints in every format, cases opened, and the console served on loopback.

Needs nothing outside the package except Debian's softflowd (installed by
scripts/install); without it, the flow part is skipped with a clear note.
"""

from __future__ import annotations

import secrets
import shutil
import socket
import subprocess
import time
from importlib import resources
from pathlib import Path

from rich.console import Console
from rich.table import Table

from aupguard.config import Settings

MARKER = ".aupguard-demo"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def demo_settings(base: Settings | None, data_dir: Path) -> Settings:
    """Embedded defaults with loopback-only, free ports and a fresh data directory."""
    settings = base.model_copy(deep=True) if base else Settings()
    settings.data_dir = data_dir.resolve()
    settings.flows.listen = ["127.0.0.1"]
    settings.flows.netflow_port = free_port(socket.SOCK_DGRAM)
    settings.flows.sflow_port = 0
    settings.flows.metrics_port = 0
    settings.flows.flush_seconds = 1.0
    settings.intake.listen_port = free_port()
    return settings


def prepare_dir(data_dir: Path) -> None:
    if data_dir.exists():
        if not (data_dir / MARKER).exists():
            raise SystemExit(f"{data_dir} exists and is not a demo directory; "
                             "remove it or pass --data-dir")
        shutil.rmtree(data_dir)
    data_dir.mkdir(parents=True)
    (data_dir / MARKER).write_text("created by `aupguard demo`; removed by the next demo run\n")


def import_registry(store, console: Console) -> None:
    from aupguard.registry.importer import import_file

    csv = resources.files("aupguard.demo").joinpath("clients.csv")
    with resources.as_file(csv) as path, store.session() as session:
        result = import_file(session, Path(path), actor="demo")
    console.print(f"[bold]1. Registry[/]: {result.clients} clients (with a reseller, a reassigned "
                  f"prefix and a CGNAT address shared by port) and {result.assignments} assignments")


def show_attribution(store, console: Console) -> None:
    from aupguard.cli_support import parse_time
    from aupguard.registry import load_index

    questions = [("198.51.100.70", "2026-03-01T12:00:00Z", None),
                 ("198.51.100.70", "2026-09-01T12:00:00Z", None),
                 ("198.51.100.23", "2026-11-28T08:59:41Z", None),
                 ("192.0.2.200", "2026-11-28T12:00:00Z", None),
                 ("192.0.2.200", "2026-11-28T12:00:00Z", 40000),
                 ("2001:db8:100::25", "2026-11-28T12:00:00Z", None),
                 ("8.8.8.8", "2026-11-28T12:00:00Z", None)]
    with store.session() as session:
        index = load_index(session)
    table = Table("address", "time", "port", "answer", title="attribution: who held it then?")
    for ip, at, port in questions:
        answer = index.who(ip, parse_time(at), port)
        text = {"match": f"{answer.client_id} (via {answer.prefix})",
                "ambiguous": f"ambiguous: {', '.join(answer.candidates)}",
                "none": "nobody"}[answer.status]
        table.add_row(ip, at, "-" if port is None else str(port), text)
    console.print(table)


def replay_flows(settings: Settings, store, console: Console) -> int:
    """Generated attacks -> softflowd (NetFlow v9) -> live collector -> detection."""
    from aupguard.demo.traffic import demo_pcap
    from aupguard.detect.detector import LiveDetector
    from aupguard.flows.collector import Collector
    from aupguard.policy.acceptance import TrafficAcceptance

    softflowd = shutil.which("softflowd") or (
        "/usr/sbin/softflowd" if Path("/usr/sbin/softflowd").exists() else None)
    if not softflowd:
        console.print("[yellow]2. Flows: softflowd is not installed (./scripts/install adds it); "
                      "skipping the flow part of the demo[/]")
        return 0
    pcap = settings.data_dir / "demo-traffic.pcap"
    attacks = demo_pcap(pcap, time.time() - 60)
    detector = LiveDetector(settings, store)
    collector = Collector(settings, store)
    collector.add_listener(lambda table: detector.process(table))
    collector.add_listener(TrafficAcceptance(store).observe)
    collector.start()
    try:
        port = collector.ports[0][1]
        subprocess.run([softflowd, "-r", str(pcap), "-n", f"127.0.0.1:{port}", "-v", "9", "-a",
                        "-m", "200000"], check=True, capture_output=True, timeout=300)
        collector.wait_idle(timeout=60)
    finally:
        collector.stop()
    detector.tick()
    stats = collector.stats()
    console.print(f"[bold]2. Flows[/]: {len(attacks)} attacks hidden in ordinary traffic, exported by "
                  f"softflowd as NetFlow v9 to the collector on 127.0.0.1:{port}; "
                  f"{stats.get('flows_out', '?')} flows stored under {settings.data_dir / 'flows'}")
    return len(attacks)


def import_complaints(settings: Settings, store, console: Console) -> None:
    from aupguard.intake.pipeline import Intake

    samples = resources.files("aupguard.intake").joinpath("samples")
    raws = [(p.read_bytes(), p.name) for p in sorted(samples.iterdir()) if p.name.endswith(".eml")]
    intake = Intake(settings, store)
    results = intake.ingest_many([r for r, _ in raws], source="import")
    events = sum(len(r.event_ids) for r in results)
    console.print(f"[bold]3. Complaints[/]: {len(raws)} sample complaints (ARF, X-ARF, XARF v4, ACNS, "
                  f"Shadowserver zip, SpamCop, free text, a hostile one) -> {events} events")


def open_cases(settings: Settings, store, console: Console) -> None:
    from aupguard.cases import service as cases
    from aupguard.incidents import list_incidents

    with store.session() as session:
        opened = cases.ingest_incidents(session, settings, actor="demo")
        incidents = list_incidents(session)
        all_cases = cases.list_cases(session, restricted_ok=True)
    table = Table("incident", "source", "rule", "clause", "client", "offender", "victim",
                  title="incidents")
    for row in sorted(incidents, key=lambda r: r.id):
        table.add_row(str(row.id), row.source, row.rule, row.clause_id, row.client_id or "(review)",
                      row.offender[:30], row.victim[:30])
    console.print(table)
    console.print(f"[bold]4. Cases[/]: {len(all_cases)} cases (client x clause) from "
                  f"{len(incidents)} incidents; {len(opened)} opened or grown now")


def create_logins(store) -> list[tuple[str, str, str]]:
    """An admin for the desk and a legal user (the only role that sees CSAM cases)."""
    from aupguard.web.auth import add_user

    logins = []
    with store.session() as session:
        for name, role in (("demo", "admin"), ("legal", "legal")):
            password = secrets.token_urlsafe(12)
            add_user(session, name, role, password, actor="demo")
            logins.append((name, role, password))
    return logins


def run_demo(app_state, serve: bool = True, data_dir: Path | None = None) -> None:
    from aupguard.store.db import open_store

    console = Console()
    base = app_state.settings if app_state.config_path else None
    target = data_dir or (base.data_dir if base else Path("aupguard-demo"))
    prepare_dir(target)
    settings = demo_settings(base, target)
    store = open_store(settings)
    console.rule("aupguard demo")
    console.print(f"data directory: {settings.data_dir} (state: {settings.database_url})")
    import_registry(store, console)
    show_attribution(store, console)
    replay_flows(settings, store, console)
    import_complaints(settings, store, console)
    open_cases(settings, store, console)
    logins = create_logins(store)
    url = f"http://{settings.web.host}:{settings.web.port}/"
    console.rule()
    for name, role, password in logins:
        console.print(f"login [bold]{name}[/] ({role}): password [bold]{password}[/]", highlight=False)
    if not serve:
        console.print(f"console not started (--no-serve); serve it later with "
                      f"`aupguard -c CONFIG web` where CONFIG sets data_dir = {str(settings.data_dir)!r}")
        return
    from aupguard.web.app import serve as serve_web

    console.print(f"[bold green]console:[/] {url}   (Ctrl-C stops)")
    serve_web(settings, store)
