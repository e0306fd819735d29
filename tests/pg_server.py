"""A throwaway PostgreSQL server on loopback, from Debian's binaries.

Started once per test session by the ``pg_url`` fixture: initdb into a temp
directory, listen on 127.0.0.1 on a free port, trust auth. Runs as the
``postgres`` user when the tests run as root (initdb refuses root).
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time


def pg_bindir() -> str | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return os.path.dirname(found[-1])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PostgresServer:
    def __init__(self) -> None:
        self.bindir = pg_bindir()
        if not self.bindir:
            raise RuntimeError("PostgreSQL binaries not found (apt install postgresql)")
        self.tmp = tempfile.mkdtemp(prefix="aupguard-pg-")
        self.datadir = os.path.join(self.tmp, "data")
        self.port = free_port()
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres"
            pw = pwd.getpwnam("postgres")
            os.chown(self.tmp, pw.pw_uid, pw.pw_gid)

    def _run(self, *args: str, **kw) -> subprocess.CompletedProcess:
        cmd = list(args)
        if self.user:
            cmd = ["runuser", "-u", self.user, "--"] + cmd
        return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)

    def start(self) -> str:
        self._run(f"{self.bindir}/initdb", "-D", self.datadir, "-A", "trust", "-U", "aupguard",
                  "--no-sync", "-E", "UTF8")
        self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-w", "-t", "60", "-l",
                  os.path.join(self.tmp, "log"), "-o",
                  f"-h 127.0.0.1 -p {self.port} -k {self.tmp} -F -c max_connections=200",
                  "start")
        for _ in range(100):
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", self.port)) == 0:
                    break
            time.sleep(0.1)
        self._run(f"{self.bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "aupguard", "aupguard")
        return self.url("aupguard")

    def url(self, db: str) -> str:
        return f"postgresql+psycopg://aupguard@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        self._run(f"{self.bindir}/createdb", "-h", "127.0.0.1", "-p", str(self.port),
                  "-U", "aupguard", name)
        return self.url(name)

    def stop(self) -> None:
        try:
            self._run(f"{self.bindir}/pg_ctl", "-D", self.datadir, "-m", "immediate", "stop")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.tmp, ignore_errors=True)
