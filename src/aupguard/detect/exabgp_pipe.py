"""ExaBGP API helper process: copies command lines from a FIFO to stdout.

ExaBGP runs this as its `process` and reads API commands from its stdout.
aupguard writes commands into the FIFO. The FIFO is opened read-write so the
reader never sees end-of-file when a writer closes. ExaBGP's acknowledgements
on stdin are drained so its pipe never fills.
"""

from __future__ import annotations

import os
import sys
import threading


def _drain_stdin() -> None:
    for _ in sys.stdin:
        pass
    os._exit(0)  # ExaBGP went away: stop too


def main(path: str) -> None:
    threading.Thread(target=_drain_stdin, daemon=True).start()
    fd = os.open(path, os.O_RDWR)
    with os.fdopen(fd, "r", encoding="utf-8", errors="replace") as fifo:
        for line in fifo:
            line = line.strip()
            if line:
                sys.stdout.write(line + "\n")
                sys.stdout.flush()


if __name__ == "__main__":
    main(sys.argv[1])
