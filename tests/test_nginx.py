"""nginx in front of gunicorn (issue 12 item 4): deploy/nginx/checkout.conf, as the README's
production section runs it, keeps 600 slow clients (slowloris: headers never finished)
away from gunicorn's threads, so a checkout page and /healthz still answer.

Debian's nginx (`apt-get install nginx`; .ci/run installs it) is started with the repo's
file, its ports rewritten to loopback ones, inside a minimal nginx.conf of the test's own.
"""

from __future__ import annotations

import http.client
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from sqlalchemy import create_engine, select

from checkout.store.models import NotifyMessage
from tests.conftest import _database_url
from tests.support.live import free_port
from tests.test_gunicorn import wait_for

ROOT = Path(__file__).resolve().parent.parent
CONF = ROOT / "deploy" / "nginx" / "checkout.conf"
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
SLOW_CLIENTS = 600
CLIENT_ADDRESS = "127.0.0.3"  # loopback, but not the address nginx talks to gunicorn from

pytestmark = pytest.mark.skipif(
    NGINX is None, reason="nginx is not installed (apt-get install nginx; .ci/run does)"
)


def nginx_config(tmp_path: Path, listen: int, upstream: int) -> Path:
    """The repo's server block with loopback ports, in an nginx.conf that writes only
    under `tmp_path`."""
    server = CONF.read_text()
    server, listens = re.subn(r"listen 80;", f"listen 127.0.0.1:{listen};", server)
    server, upstreams = re.subn(
        r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream};", server
    )
    assert listens == 1 and upstreams == 1, "deploy/nginx/checkout.conf changed shape"
    server = server.replace("/var/log/nginx/checkout.access.log", str(tmp_path / "access.log"))
    (tmp_path / "checkout.conf").write_text(server)
    for name in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
        (tmp_path / name).mkdir(exist_ok=True)
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
worker_processes 1;
daemon off;
pid {tmp_path}/nginx.pid;
error_log {tmp_path}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    client_body_temp_path {tmp_path}/body;
    proxy_temp_path {tmp_path}/proxy;
    fastcgi_temp_path {tmp_path}/fastcgi;
    uwsgi_temp_path {tmp_path}/uwsgi;
    scgi_temp_path {tmp_path}/scgi;
    include {tmp_path}/checkout.conf;
}}
"""
    path = tmp_path / "nginx.conf"
    path.write_text(main)
    return path


@dataclass
class Stack:
    url: str  # nginx
    database_url: str
    tmp_path: Path

    def logs(self) -> str:
        return "\n".join(
            f"--- {name}\n" + (self.tmp_path / name).read_text()[-3000:]
            for name in ("gunicorn.log", "error.log")
            if (self.tmp_path / name).exists()
        )


@pytest.fixture
def nginx_stack(tmp_path: Path) -> Iterator[Stack]:
    app_port, nginx_port = free_port(), free_port()
    public = f"http://127.0.0.1:{nginx_port}"
    database_url = _database_url(tmp_path)
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": public,
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{free_port()}",
        "DATABASE_URL": database_url,
        "CHECKOUT__PROXY_FIX_X_FOR": "1",  # nginx is the one trusted hop
        "WEB_CONCURRENCY": "1",  # one worker of gunicorn.conf.py's 256 threads: 600 > 256
    }
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    config = nginx_config(tmp_path, nginx_port, app_port)
    assert NGINX is not None
    check = subprocess.run(
        [NGINX, "-t", "-c", str(config), "-e", str(tmp_path / "error.log")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert check.returncode == 0, check.stderr
    log = (tmp_path / "gunicorn.log").open("w")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app",
             "--bind", f"127.0.0.1:{app_port}"],
            env=env, cwd=ROOT, stdout=log, stderr=log,
        ),
        subprocess.Popen(
            [NGINX, "-c", str(config), "-e", str(tmp_path / "error.log")],
            stdout=log, stderr=log,
        ),
    ]  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{app_port}/readyz")
        wait_for(f"{public}/readyz")
        yield Stack(public, database_url, tmp_path)
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        log.close()


def _slow_clients(port: int, count: int) -> list[socket.socket]:
    """`count` connections that send the start of a request and never finish its headers."""
    clients = []
    for n in range(count):
        sock = socket.create_connection(("127.0.0.1", port), timeout=5)
        sock.sendall(f"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow-{n}: ".encode())
        clients.append(sock)
    return clients


def test_600_slow_clients_starve_neither_a_checkout_page_nor_healthz(
    nginx_stack: Stack,
) -> None:
    base = nginx_stack.url
    created = requests.post(
        f"{base}/api/v1/checkouts",
        headers={"Authorization": "Bearer sk_test_demo"},
        json={
            "order_id": "nginx-1",
            "amount": 15000,
            "currency": "KRW",
            "return_url": f"{base}/demo/shop-return",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text + nginx_stack.logs()
    page_url = created.json()["url"]
    assert page_url.startswith(base)

    port = int(base.rsplit(":", 1)[1])
    clients = _slow_clients(port, SLOW_CLIENTS)
    try:
        for _round in range(3):  # the slow clients trickle on between rounds
            for url in (f"{base}/healthz", page_url):
                started = time.monotonic()
                resp = requests.get(url, timeout=10)
                assert resp.status_code == 200, (url, resp.status_code, nginx_stack.logs())
                assert time.monotonic() - started < 5, url
            alive = 0
            for sock in clients:
                try:
                    sock.sendall(b"x")
                    alive += 1
                except OSError:
                    pass
            assert alive >= SLOW_CLIENTS - 10  # nginx holds them, it did not just refuse
            time.sleep(0.5)
    finally:
        for sock in clients:
            sock.close()


def test_request_ids_and_client_addresses_pass_through(nginx_stack: Stack) -> None:
    base = nginx_stack.url
    resp = requests.get(f"{base}/healthz", headers={"X-Request-Id": "from-the-edge-42"})
    assert resp.headers["X-Request-Id"] == "from-the-edge-42"
    generated = requests.get(f"{base}/healthz", timeout=10).headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", generated)  # nginx's $request_id, kept by the app
    assert "request_id=from-the-edge-42" in (nginx_stack.tmp_path / "access.log").read_text()

    # The client's address, not nginx's, and never what the client claims in the header.
    port = int(base.rsplit(":", 1)[1])
    conn = http.client.HTTPConnection(
        "127.0.0.1", port, timeout=10, source_address=(CLIENT_ADDRESS, 0)
    )
    conn.request("POST", "/notify/paypro_kr", body=b"{}", headers={"X-Forwarded-For": "6.6.6.6"})
    assert conn.getresponse().status in (400, 401)
    conn.close()
    engine = create_engine(nginx_stack.database_url)
    try:
        with engine.connect() as db:
            addresses = db.execute(select(NotifyMessage.remote_addr)).scalars().all()
    finally:
        engine.dispose()
    assert addresses == [CLIENT_ADDRESS]


def test_bodies_over_the_apps_limit_stop_at_nginx(nginx_stack: Stack) -> None:
    resp = requests.post(
        f"{nginx_stack.url}/notify/paypro_kr", data=b"x" * (300 * 1024), timeout=10
    )
    assert resp.status_code == 413
