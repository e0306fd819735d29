"""The SMTP listener for the abuse addresses (aiosmtpd).

Each message is written durably into the Maildir spool before the 250 reply;
a worker thread then stores, parses and attributes it, so a slow or failing
parser never delays or crashes the listener. On start, anything left in the
spool by a crash is processed first.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import socket
import ssl
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path

from aupguard.errors import ConfigError
from aupguard.intake.pipeline import Intake
from aupguard.intake.rawstore import Maildir

log = logging.getLogger("aupguard.intake")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class _Handler:
    def __init__(self, server: "IntakeServer"):
        self.server = server

    async def handle_RCPT(self, smtp, session, envelope, address, rcpt_options):
        if (address.strip().lower() not in self.server.accepted
                and not self.server.is_case_reply(address)):
            self.server.stats["refused_rcpt"] += 1
            return (f"550 5.7.1 <{address[:100]}>: relay access denied: this server only "
                    "accepts mail for its abuse addresses")
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, smtp, session, envelope):
        stamp = format_datetime(datetime.now(timezone.utc))
        peer = session.peer[0] if session.peer else "unknown"
        helo = (session.host_name or "unknown").replace("\r", "").replace("\n", "")[:200]
        sender = (envelope.mail_from or "").replace("\r", "").replace("\n", "")[:300]
        # Delivered-To records which of our addresses it came to: a per-case reply address
        # routes the message into its case instead of the complaint parsers.
        delivered = "".join(f"Delivered-To: {r[:300]}\r\n" for r in envelope.rcpt_tos
                            if self.server.is_case_reply(r))
        trace = (f"Return-Path: <{sender}>\r\n{delivered}Received: from {helo} ([{peer}]) by "
                 f"{self.server.config.hostname} (aupguard intake) with SMTP; {stamp}\r\n")
        data = trace.encode() + (envelope.original_content or b"")
        loop = asyncio.get_running_loop()
        try:
            path = await loop.run_in_executor(None, self.server.maildir.deliver, data)
        except OSError as exc:
            log.error("cannot spool message: %s", exc)
            self.server.stats["spool_errors"] += 1
            return "451 4.3.0 cannot store the message right now; try again later"
        if self.server.on_spooled is not None:
            self.server.on_spooled(path)
        self.server.stats["received"] += 1
        self.server.work.put(path)
        return f"250 2.0.0 OK queued as {path.name}"


class IntakeServer:
    """start()/stop() the SMTP listener and its processing worker (for `aupguard run`)."""

    def __init__(self, settings, store, *, on_spooled: Callable[[Path], None] | None = None,
                 index_ttl: float = 10.0):
        self.settings = settings
        self.config = settings.intake
        self.store = store
        self.accepted = {a.strip().lower() for a in self.config.addresses}
        self.maildir = Maildir(Path(settings.data_dir) / "intake" / "maildir")
        self.intake = Intake(settings, store, index_ttl=index_ttl)
        self.on_spooled = on_spooled
        self.work: queue.Queue = queue.Queue()
        self.stats = {"received": 0, "processed": 0, "failed": 0, "refused_rcpt": 0,
                      "spool_errors": 0, "imap_imported": 0, "imap_errors": 0}
        self.port = self.config.listen_port
        self._controller = None
        self._worker: threading.Thread | None = None
        self._poller: threading.Thread | None = None
        self._stopping = threading.Event()

    def is_case_reply(self, address: str) -> bool:
        """A MAC-verified per-case reply address (abuse+case-<id>-<mac>@...) from a notice."""
        try:
            from aupguard.cases import service as cases
        except ImportError:  # the cases stage is optional
            return False
        return cases.is_case_reply(self.settings, [address.strip().replace("\r", "").replace("\n", "")])

    def _thread_replies(self, paths: list[Path]) -> list[Path]:
        """Hand clients' answers to their cases; return the paths that are complaints."""
        from email.parser import BytesHeaderParser

        complaints = []
        for path in paths:
            raw = path.read_bytes()
            head = BytesHeaderParser().parsebytes(raw[:65536])
            if not any(self.is_case_reply(str(r)) for r in head.get_all("Delivered-To", [])):
                complaints.append(path)
                continue
            from aupguard.cases import service as cases

            with self.store.session() as session:
                case = cases.thread_reply(session, raw, self.settings)
            if case is None:  # a valid address but no case: treat it as a complaint
                complaints.append(path)
            else:
                self.maildir.done(path)
                self.stats["case_replies"] = self.stats.get("case_replies", 0) + 1
        return complaints

    def _tls_context(self) -> ssl.SSLContext | None:
        if not self.config.tls_cert:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.config.tls_cert, self.config.tls_key or None)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"intake.tls_cert/tls_key cannot be loaded: {exc}") from None
        return context

    def start(self) -> None:
        from aiosmtpd.controller import Controller
        from aiosmtpd.smtp import SMTP

        class LenientSMTP(SMTP):
            # RFC 5321 caps lines at 1000 octets, but abuse reports from broken generators
            # exceed it; refusing them would lose complaints, so accept up to 64 KiB.
            line_length_limit = 65536

        class IntakeController(Controller):
            def factory(self):
                return LenientSMTP(self.handler, **self.SMTP_kwargs)

        for path in self.maildir.pending():  # crash recovery: spooled, never processed
            self.work.put(path)
        self._worker = threading.Thread(target=self._run_worker, name="intake-worker",
                                        daemon=True)
        self._worker.start()
        if not self.port:
            self.port = free_port(self.config.listen_host)
        tls = self._tls_context()
        self._controller = IntakeController(
            _Handler(self), hostname=self.config.listen_host, port=self.port,
            server_hostname=self.config.hostname, ready_timeout=10,
            data_size_limit=self.config.max_message_bytes, tls_context=tls,
            require_starttls=False, ident="aupguard intake")
        try:
            self._controller.start()
        except OSError as exc:
            self.work.put(None)
            raise ConfigError(f"cannot listen on {self.config.listen_host}:{self.port}: "
                              f"{exc.strerror or exc} (set intake.listen_port)") from None
        if self.config.imap_host:
            self._stopping.clear()
            self._poller = threading.Thread(target=self._poll_loop, name="intake-imap",
                                            daemon=True)
            self._poller.start()

    def _poll_loop(self) -> None:
        """Poll the configured IMAP mailbox now and every imap_poll_seconds until stop()."""
        from aupguard.intake.imports import poll_imap

        config = self.config
        while not self._stopping.is_set():
            try:
                self.stats["imap_imported"] += poll_imap(
                    self.intake, host=config.imap_host, port=config.imap_port,
                    user=config.imap_user, password=config.imap_password,
                    folder=config.imap_folder, use_ssl=config.imap_ssl)
            except Exception as exc:  # noqa: BLE001 - keep polling; SMTP keeps serving
                self.stats["imap_errors"] += 1
                log.warning("IMAP poll of %s failed: %s", config.imap_host, exc)
            self._stopping.wait(config.imap_poll_seconds)

    def stop(self) -> None:
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=60)
            self._poller = None
        if self._controller is not None:
            self._controller.stop()
            self._controller = None
        if self._worker is not None:
            self.work.put(None)
            self._worker.join(timeout=30)
            self._worker = None

    def wait_idle(self, timeout: float = 10.0) -> bool:
        """Block until every spooled message is processed (for tests and shutdown)."""
        done = threading.Event()
        threading.Thread(target=lambda: (self.work.join(), done.set()), daemon=True).start()
        return done.wait(timeout)

    def _run_worker(self) -> None:
        """Process spooled messages; a burst is committed in batches of up to 100."""
        while True:
            batch = [self.work.get()]
            while len(batch) < 100:
                try:
                    batch.append(self.work.get_nowait())
                except queue.Empty:
                    break
            paths = [p for p in batch if p is not None]
            try:
                if paths:
                    self._process(paths)
            finally:
                for _ in batch:
                    self.work.task_done()
            if len(paths) != len(batch):
                return

    def _process(self, paths: list[Path]) -> None:
        try:
            paths = self._thread_replies(paths)
            if not paths:
                return
            # The spool copy is already durable: the raw store syncs once per batch.
            prepared = [self.intake.prepare(path.read_bytes(), source="smtp", sync=False)
                        for path in paths]
            self.intake.store_prepared(prepared)
            for path in paths:
                self.maildir.done(path)
            self.stats["processed"] += len(paths)
        except Exception:  # noqa: BLE001 - keep the spool files; a restart retries them
            self.stats["failed"] += len(paths)
            log.exception("processing %d spooled message(s) failed; they stay in the spool "
                          "for a retry", len(paths))
