"""Real SMTP servers on loopback for the probe tests: a private Postfix instance
(open or closed relay) and aiosmtpd variants (AUTH required / offered only).
Both count DATA/BDAT from the server side."""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import time
from pathlib import Path

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult

MASTER_CF = """\
{listen} inet n - n - - smtpd
postlog   unix-dgram n  -       n       -       1       postlogd
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
"""


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrivatePostfix:
    """Debian's Postfix with its own config, queue and log in `root`, on a loopback port."""

    def __init__(self, root: Path, open_relay: bool):
        self.root = root
        self.port = free_tcp_port()
        self.conf = root / "conf"
        self.maillog = root / "maillog"
        self.open_relay = open_relay
        self.proc: subprocess.Popen | None = None

    def write_config(self) -> None:
        for d in ("conf", "queue", "data"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        shutil.chown(self.root / "data", "postfix")
        # Open: every client is "ours" (mynetworks 0/0). Closed: loopback is outside.
        mynetworks = "0.0.0.0/0" if self.open_relay else "192.0.2.0/24"
        (self.conf / "main.cf").write_text(f"""\
compatibility_level = 3.6
queue_directory = {self.root}/queue
data_directory = {self.root}/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mx.client.test
mydomain = client.test
mydestination = mx.client.test, client.test
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = {mynetworks}
smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination
smtpd_peername_lookup = no
disable_dns_lookups = yes
maillog_file = {self.maillog}
maillog_file_prefixes = {self.root}
alias_maps =
alias_database =
local_recipient_maps =
shlib_directory = /usr/lib/postfix
""")
        (self.conf / "master.cf").write_text(MASTER_CF.format(listen=f"127.0.0.1:{self.port}"))

    def start(self) -> None:
        self.write_config()
        self.proc = subprocess.Popen(["postfix", "-c", str(self.conf), "start-fg"],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as s:
                    if s.recv(100).startswith(b"220"):
                        return
            except OSError:
                if self.proc.poll() is not None:
                    raise RuntimeError("postfix exited: " + self.proc.stderr.read().decode())
                time.sleep(0.1)
        raise RuntimeError("postfix did not greet within 20 s")

    def stop(self) -> None:
        subprocess.run(["postfix", "-c", str(self.conf), "stop"], capture_output=True, timeout=20)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()

    def log(self) -> str:
        return self.maillog.read_text() if self.maillog.exists() else ""

    def wait_disconnects(self, count: int, timeout: float = 5.0) -> list[str]:
        """The smtpd 'disconnect from ... commands=' lines (postlogd writes asynchronously)."""
        deadline = time.monotonic() + timeout
        while True:
            lines = [l for l in self.log().splitlines() if "disconnect from" in l]
            if len(lines) >= count or time.monotonic() > deadline:
                return lines

    def queued_files(self) -> list[Path]:
        queue = self.root / "queue"
        return [p for d in ("maildrop", "incoming", "active", "deferred", "hold")
                if (queue / d).exists() for p in (queue / d).rglob("*") if p.is_file()]


def data_commands(disconnect_lines: list[str]) -> int:
    return sum(int(n) for l in disconnect_lines for n in re.findall(r"\b(?:data|bdat)=(\d+)", l))


class CountingSMTP(SMTP):
    """aiosmtpd server that counts DATA/BDAT attempts (the probe must make none)."""

    data_calls = 0

    async def smtp_DATA(self, arg):
        CountingSMTP.data_calls += 1
        return await super().smtp_DATA(arg)

    async def smtp_BDAT(self, arg):  # not implemented by aiosmtpd; counted anyway
        CountingSMTP.data_calls += 1
        await self.push("502 5.5.1 not implemented")


class AcceptAll:
    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        return "250 accepted"


def _authenticator(server, session, envelope, mechanism, auth_data):
    ok = getattr(auth_data, "login", None) == b"user" and auth_data.password == b"secret"
    return AuthResult(success=ok)


class AioSmtp(Controller):
    """aiosmtpd on loopback: AUTH offered; required or not."""

    def __init__(self, auth_required: bool):
        self.auth_required = auth_required
        super().__init__(AcceptAll(), hostname="127.0.0.1", port=free_tcp_port())

    def factory(self):
        return CountingSMTP(self.handler, hostname="mail.aio.test", auth_required=self.auth_required,
                            auth_require_tls=False, authenticator=_authenticator)
