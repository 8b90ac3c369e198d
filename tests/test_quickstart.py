"""The README's run command: the app and the sandboxes come up and print a checkout URL."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_devserver_prints_working_checkout_urls(tmp_path: Path) -> None:
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CHECKOUT_CONFIG", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkout.devserver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        # A reader thread, not select(): the text wrapper buffers lines select cannot see.
        assert proc.stdout is not None
        reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
        reader.start()
        deadline = time.monotonic() + 60
        while not any("Mexican checkout" in line for line in lines):
            assert time.monotonic() < deadline and proc.poll() is None, "".join(lines)
            time.sleep(0.1)
        output = "".join(lines)
        urls = re.findall(r"checkout \([^)]*\): (\S+)", output)
        assert len(urls) == 2, output
        for _ in range(50):  # the server starts listening right after printing
            try:
                page = requests.get(urls[0], timeout=5)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert page.status_code == 200
        assert "KakaoPay" in page.text and "KRW 15,000" in page.text
        mx = requests.get(urls[1], timeout=5)
        assert "MXN 250.00" in mx.text
        sandbox = requests.get(f"http://127.0.0.1:{sandbox_port}/cashier/paypro/none", timeout=5)
        assert sandbox.status_code == 404  # the simulators answer on their own port
    finally:
        proc.terminate()
        proc.wait(10)
