"""The process ExaBGP runs for aupguard (its "process API" helper).

ExaBGP writes JSON messages to this process's stdin and reads API commands
from its stdout. The helper only relays both ways over a Unix socket to the
aupguard process that owns the RIB, so the speaker can live in any process
(the collector, the CLI, a test) and ExaBGP's respawn logic stays untouched.

Usage (written into the generated ExaBGP config): python -m aupguard.routing.bridge SOCKET
"""

from __future__ import annotations

import socket
import sys
import threading
import time


def _to_socket(sock: socket.socket) -> None:
    for line in sys.stdin.buffer:
        try:
            sock.sendall(line)
        except OSError:
            break
    try:
        sock.shutdown(socket.SHUT_WR)
    except OSError:
        pass


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        sys.stderr.write("usage: python -m aupguard.routing.bridge SOCKET\n")
        return 2
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    deadline = time.monotonic() + 10
    while True:
        try:
            sock.connect(argv[0])
            break
        except OSError:
            if time.monotonic() > deadline:
                sys.stderr.write(f"aupguard bridge: cannot connect to {argv[0]}\n")
                return 1
            time.sleep(0.1)
    threading.Thread(target=_to_socket, args=(sock,), daemon=True).start()
    out = sys.stdout.buffer
    with sock.makefile("rb") as commands:
        for line in commands:
            out.write(line)
            out.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
