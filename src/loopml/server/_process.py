"""A server in its own process on loopback: a free port, and waiting until it answers.

Standard library only (no web framework), for the demo, the tests and the benchmark.
"""

from __future__ import annotations

import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

__all__ = ["free_port", "wait_until_up"]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(
    proc: subprocess.Popen[bytes], url: str, *, timeout: float = 60.0, log: Path | None = None
) -> None:
    """Wait until ``url`` gives an answer below 500 (a 503 from ``/ready`` while models load
    keeps waiting). RuntimeError, with the tail of ``log``, when the process exits first or
    ``timeout`` seconds pass (the process is then killed)."""

    def tail() -> str:
        return log.read_text(errors="replace")[-4000:] if log is not None else ""

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"the server exited ({proc.returncode}):\n{tail()}")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError as exc:
            if exc.code < 500:
                return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"the server did not answer {url} in {timeout:g} s:\n{tail()}")
