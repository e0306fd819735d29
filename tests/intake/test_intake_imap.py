"""IMAP polling against a real Dovecot started on loopback (tmp config, passwd-file auth)."""

from __future__ import annotations

import imaplib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from aupguard.intake.api import list_events, list_messages
from aupguard.intake.imports import poll_imap
from tests.intake.conftest import sample

CONFIG = """
base_dir = {root}/run
state_dir = {root}/run/state
listen = 127.0.0.1
protocols = imap
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
log_path = {root}/dovecot.log
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def dovecot():
    if shutil.which("dovecot") is None:
        pytest.skip("dovecot not installed (Debian dovecot-imapd; scripts/install adds it)")
    # Dovecot never delivers mail as root: the mailbox belongs to an unprivileged user.
    # Its auth and mail processes drop privileges: use a world-traversable directory
    # (pytest's tmp_path lives under a 0700 parent).
    root = Path(tempfile.mkdtemp(prefix="aupguard-dovecot-"))
    os.chmod(root, 0o755)
    (root / "mail").mkdir()
    (root / "run").mkdir()
    uid = gid = 65534
    if os.geteuid() == 0:
        os.chown(root / "mail", uid, gid)
    else:
        uid, gid = os.getuid(), os.getgid()
    port = _free_port()
    (root / "dovecot.conf").write_text(CONFIG.format(root=root, port=port))
    (root / "passwd").write_text(f"abuse:{{PLAIN}}s3cret:{uid}:{gid}::{root}/mail/abuse\n")
    subprocess.run(["dovecot", "-c", str(root / "dovecot.conf")], check=True, timeout=30)
    deadline = time.monotonic() + 15
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if time.monotonic() > deadline:
                pytest.fail(f"dovecot did not listen: {(root / 'dovecot.log').read_text()}")
            time.sleep(0.1)
    yield {"host": "127.0.0.1", "port": port, "user": "abuse", "password": "s3cret"}
    pid = int((root / "run" / "master.pid").read_text().strip())
    os.kill(pid, signal.SIGTERM)
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.05)
    shutil.rmtree(root, ignore_errors=True)


def _append(server, raws) -> None:
    client = imaplib.IMAP4(server["host"], server["port"], timeout=10)
    client.login(server["user"], server["password"])
    for raw in raws:
        status, _ = client.append("INBOX", None, None, raw.replace(b"\n", b"\r\n"))
        assert status == "OK"
    client.logout()


def test_poll_imports_unseen_then_flags_them(dovecot, intake):
    _append(dovecot, [sample("arf-fbl.eml"), sample("xarf-v4.eml")])
    kwargs = dict(host=dovecot["host"], port=dovecot["port"], user="abuse",
                  password="s3cret", use_ssl=False, timeout=10)
    assert poll_imap(intake, **kwargs) == 2
    assert poll_imap(intake, **kwargs) == 0          # flagged \Seen: not fetched again
    with intake.store.session() as session:
        messages = list_messages(session)
        clients = sorted(e.client_id for e in list_events(session))
    assert {m.source for m in messages} == {"imap"}
    assert sorted(m.parser for m in messages) == ["arf", "xarf"]
    assert clients == ["acme", "cgnat-b"]


def test_poll_with_wrong_password_says_so(dovecot, intake):
    from aupguard.errors import InputError

    with pytest.raises(InputError, match="IMAP login as 'abuse' failed"):
        poll_imap(intake, host=dovecot["host"], port=dovecot["port"], user="abuse",
                  password="wrong", use_ssl=False, timeout=10)


def test_server_polls_imap_in_the_background(dovecot, intake_settings, seeded):
    from aupguard.intake.server import IntakeServer

    _append(dovecot, [sample("acns.eml")])
    config = intake_settings.intake
    config.listen_port = 0
    config.imap_host, config.imap_port = dovecot["host"], dovecot["port"]
    config.imap_user, config.imap_password, config.imap_ssl = "abuse", "s3cret", False
    server = IntakeServer(intake_settings, seeded, index_ttl=0)
    server.start()
    try:
        deadline = time.monotonic() + 30
        while server.stats["imap_imported"] < 1 and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        server.stop()
    assert server.stats["imap_imported"] == 1 and server.stats["imap_errors"] == 0
    with seeded.session() as session:
        (message,) = list_messages(session)
    assert message.source == "imap" and message.parser == "acns"
