"""`python3 dev.py run --port N` as a test starts it: a subprocess on three free ports."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import requests


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def three_free_ports() -> int:
    """A port N with N, N+1 and N+2 free (the app, the sandboxes, the demo shop)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and all(_free(p) for p in (port, port + 1, port + 2)):
            return port
    raise AssertionError("no three free ports in a row")


@dataclass
class DevServer:
    port: int
    env: dict[str, str]
    lines: list[str] = field(default_factory=list)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def output(self) -> str:
        return "".join(self.lines)


def _answers(server: DevServer) -> bool:
    # werkzeug says "Running on <base>" once the app's port is bound (ours, not another's).
    if not re.search(r"An operator: .*\n", server.output) or (
        f"Running on {server.base}" not in server.output
    ):
        return False
    try:
        return requests.get(f"{server.base}/healthz", timeout=5).status_code == 200
    except requests.ConnectionError:
        return False


def _start(tmp_path: Path) -> tuple[subprocess.Popen[str], DevServer]:
    port = three_free_ports()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("CHECKOUT_CONFIG", "DATABASE_URL", "CHECKOUT_PUBLIC_BASE_URL"):
        env.pop(name, None)
    for name in [n for n in env if n.startswith("CHECKOUT__") or n == "CHECKOUT_SANDBOX_URL"]:
        env.pop(name)
    server = DevServer(port, env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkout.devtools.devserver", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    # A reader thread, not select(): the text wrapper buffers lines select cannot see.
    assert proc.stdout is not None
    stdout = proc.stdout
    threading.Thread(target=lambda: server.lines.extend(stdout), daemon=True).start()
    return proc, server


@contextmanager
def running_devserver(tmp_path: Path) -> Iterator[DevServer]:
    """Started on three free ports; again on others (3 tries) if one was taken meanwhile."""
    for attempt in range(3):
        proc, server = _start(tmp_path)
        try:
            deadline = time.monotonic() + 90
            # Up once it printed its banner and its app answers (the app binds its port last).
            while proc.poll() is None and not _answers(server):
                assert time.monotonic() < deadline, server.output
                time.sleep(0.1)
            if proc.poll() is not None:
                proc.wait(10)
                time.sleep(0.2)  # the reader thread's last lines
                if "Address already in use" in server.output and attempt < 2:
                    continue  # another process took a port between our check and the bind
                raise AssertionError(server.output)
            yield server
            return
        finally:
            if proc.poll() is None:
                proc.terminate()
                proc.wait(10)
