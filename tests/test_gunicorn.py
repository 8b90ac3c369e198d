"""Production shape: gunicorn with one sync worker, the sandbox as its own process.

One sync worker is the worst case for a server that calls a provider living in its own
process; the sandbox runs beside it, so a payment goes through without a deadlock.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.conftest import _database_url
from tests.support.live import free_port
from tests.support.shopper import KR_PAYER, Shopper

ROOT = Path(__file__).resolve().parent.parent


def wait_for(url: str, seconds: float = 60) -> None:
    """Until `url` answers. Generous: on a busy machine booting workers can take a while, and
    gunicorn accepts connections before its workers are ready (a probe may time out)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=5)
            return
        except (requests.ConnectionError, requests.Timeout):
            time.sleep(0.2)
    raise AssertionError(f"{url} did not come up")


@pytest.fixture
def gunicorn_app(tmp_path: Path) -> Iterator[str]:
    app_port, sandbox_port = free_port(), free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "DATABASE_URL": _database_url(tmp_path),
    }
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    logs = (tmp_path / "sandbox.log").open("w"), (tmp_path / "gunicorn.log").open("w")
    procs = [
        subprocess.Popen([*flask, "sandbox"], env=env, cwd=ROOT, stdout=logs[0], stderr=logs[0]),
        subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "wsgi:app", "--workers", "1",
             "--worker-class", "sync", "--bind", f"127.0.0.1:{app_port}", "--timeout", "30"],
            env=env, cwd=ROOT, stdout=logs[1], stderr=logs[1],
        ),
    ]  # fmt: skip
    try:
        wait_for(f"http://127.0.0.1:{sandbox_port}/")
        wait_for(f"http://127.0.0.1:{app_port}/")
        yield f"http://127.0.0.1:{app_port}"
    finally:
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(10)
        for log in logs:
            log.close()


def _logs(tmp_path: Path) -> str:
    """Both servers' logs, for a failure's message (they live in other processes)."""
    return "\n".join(
        f"--- {name}\n" + (tmp_path / name).read_text()[-4000:]
        for name in ("gunicorn.log", "sandbox.log")
        if (tmp_path / name).exists()
    )


def test_pay_through_gunicorn_sync_worker_and_separate_sandbox(
    gunicorn_app: str, tmp_path: Path
) -> None:
    created = requests.post(
        f"{gunicorn_app}/api/v1/checkouts",
        headers={"Authorization": "Bearer sk_test_demo"},
        json={
            "order_id": "gunicorn-1",
            "amount": 15000,
            "currency": "KRW",
            "return_url": f"{gunicorn_app}/demo/shop-return",
        },
        timeout=10,
    )
    assert created.status_code == 201, created.text
    checkout = created.json()
    shopper = Shopper(checkout["url"])
    resp = shopper.submit("kakaopay", KR_PAYER)
    assert resp.status_code == 303, resp.text[-2000:] + _logs(tmp_path)
    paid = requests.post(resp.headers["Location"], data={"action": "pay"}, timeout=10)
    assert paid.status_code == 200  # followed the cashier's redirect to our return page
    assert "Payment received" in paid.text or "Waiting" in paid.text
    status = None
    for _ in range(100):  # the notify comes from the sandbox process
        status = requests.get(
            f"{gunicorn_app}/api/v1/checkouts/{checkout['id']}",
            headers={"Authorization": "Bearer sk_test_demo"},
            timeout=10,
        ).json()["status"]
        if status == "paid":
            break
        time.sleep(0.1)
    assert status == "paid"


def test_metrics_add_up_across_gunicorn_workers(tmp_path: Path) -> None:
    """Four sync workers in multiprocess mode: /metrics, in whichever worker answers, counts
    the requests every worker served; the directory is created by gunicorn.conf.py."""
    from concurrent.futures import ThreadPoolExecutor

    from prometheus_client.parser import text_string_to_metric_families

    port = free_port()
    metrics_dir = tmp_path / "metrics" / "checkout"  # does not exist yet
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": _database_url(tmp_path),
        "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
    }
    env.pop("CHECKOUT_CONFIG", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    log = (tmp_path / "gunicorn.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app",
         "--workers", "4", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
         "--timeout", "30"],
        env=env, cwd=ROOT, stdout=log, stderr=log,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz")  # not /healthz: a probe that timed out may still count

        def hit(_: int) -> str:
            # A new connection each time, so the workers share the requests.
            resp = requests.get(f"{base}/healthz", headers={"Connection": "close"}, timeout=10)
            assert resp.status_code == 200
            return resp.headers["X-Request-Id"]

        ids: list[str] = []
        deadline = time.monotonic() + 60
        with ThreadPoolExecutor(8) as pool:
            # Batches until several workers have served (each writes its own file; on a busy
            # machine the other workers may still be booting at first).
            while len(list(metrics_dir.glob("histogram_*.db"))) < 2:
                assert time.monotonic() < deadline, "only one worker ever answered"
                ids += pool.map(hit, range(20))
        assert len(set(ids)) == len(ids)  # a fresh request id each time
        for _ in range(3):  # each scrape may land on another worker: always the same sum
            text = requests.get(f"{base}/metrics", timeout=10).text
            samples = {
                (s.name, tuple(sorted(s.labels.items()))): s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
            }
            key = (
                "checkout_http_request_duration_seconds_count",
                (("endpoint", "ops.healthz"), ("method", "GET"), ("status", "200")),
            )
            assert samples[key] == len(ids)
            assert samples[("checkout_database_up", ())] == 1
            assert samples[("checkout_checkouts", (("status", "paid"),))] == 0
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()
    output = (tmp_path / "gunicorn.log").read_text()
    assert "Traceback" not in output, output


def test_gunicorn_conf_drops_metric_files_of_ended_processes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import runpy

    ended = subprocess.Popen([sys.executable, "-c", "pass"])
    ended.wait(10)
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / f"counter_{ended.pid}.db").write_bytes(b"")
    (metrics_dir / f"histogram_{ended.pid}.db").write_bytes(b"")
    (metrics_dir / f"counter_{os.getpid()}.db").write_bytes(b"")  # a running process
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir))
    conf = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    conf["on_starting"](None)
    assert sorted(p.name for p in metrics_dir.iterdir()) == [f"counter_{os.getpid()}.db"]
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path / "new" / "dir"))
    conf["on_starting"](None)
    assert (tmp_path / "new" / "dir").is_dir()


def test_gunicorn_lines_are_json_with_request_ids_when_asked(tmp_path: Path) -> None:
    """CHECKOUT_LOG_FORMAT=json: every line gunicorn and the app write (gunicorn's error
    log, its access log, the app's warnings) is one JSON object; access lines carry the
    request id the app answered; personal data is masked in them too."""
    import json

    port = free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(tmp_path / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "DATABASE_URL": _database_url(tmp_path),
        "CHECKOUT_LOG_FORMAT": "json",
    }
    env.pop("CHECKOUT_CONFIG", None)
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=60)
    out, err = (tmp_path / "gunicorn.out").open("w"), (tmp_path / "gunicorn.err").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "wsgi:app",
         "--workers", "1", "--worker-class", "sync", "--bind", f"127.0.0.1:{port}",
         "--timeout", "30", "--access-logfile", "-"],
        env=env, cwd=ROOT, stdout=out, stderr=err,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(f"{base}/readyz")
        ok = requests.get(
            f"{base}/healthz",
            params={"email": KR_PAYER["email"]},
            headers={"X-Request-Id": "gunicorn-json-1"},
            timeout=10,
        )
        assert ok.status_code == 200
        # A notify with a bad signature: the app logs a warning inside the request.
        refused = requests.post(
            f"{base}/notify/paypro_kr",
            data=b'{"tradeNo": "x", "sign": "0"}',
            headers={"Content-Type": "application/json", "X-Request-Id": "gunicorn-json-2"},
            timeout=10,
        )
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)
        out.close()
        err.close()
    lines = [
        line
        for name in ("gunicorn.out", "gunicorn.err")
        for line in (tmp_path / name).read_text().splitlines()
        if line.strip()
    ]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    access = [e for e in entries if e["logger"] == "gunicorn.access"]
    [health] = [e for e in access if "/healthz" in e["message"]]
    assert health["request_id"] == "gunicorn-json-1" and " 200 " in health["message"]
    assert KR_PAYER["email"] not in health["message"] and "<email>" in health["message"]
    [notify] = [e for e in access if "/notify/paypro_kr" in e["message"]]
    assert notify["request_id"] == "gunicorn-json-2" and " 401 " in notify["message"]
    [warning] = [e for e in entries if e["message"].startswith("notify rejected")]
    assert warning["request_id"] == "gunicorn-json-2" and warning["level"] == "WARNING"
    errors = [e for e in entries if e["logger"] == "gunicorn.error"]
    assert any("Booting worker" in e["message"] for e in errors)
    assert all(e["time"] and e["level"] for e in entries)
    assert KR_PAYER["email"] not in "\n".join(lines)
