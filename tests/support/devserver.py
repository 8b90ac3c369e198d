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


@contextmanager
def running_devserver(tmp_path: Path) -> Iterator[DevServer]:
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
        [sys.executable, "-m", "checkout.devserver", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        # A reader thread, not select(): the text wrapper buffers lines select cannot see.
        assert proc.stdout is not None
        stdout = proc.stdout
        threading.Thread(target=lambda: server.lines.extend(stdout), daemon=True).start()
        deadline = time.monotonic() + 90
        while not re.search(r"An operator: .*\n", server.output):
            assert time.monotonic() < deadline and proc.poll() is None, server.output
            time.sleep(0.1)
        for _ in range(100):  # the server starts listening right after printing
            try:
                requests.get(f"{server.base}/healthz", timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        yield server
    finally:
        proc.terminate()
        proc.wait(10)
