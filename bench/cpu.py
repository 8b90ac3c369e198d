"""CPU per request, in-process: the checkout page GET, a notify and the create-payment POST.

    .venv/bin/python -m bench.cpu [sqlite|postgresql ...] [--n 300] [--profile DIR]

The Flask test client drives the app in this process (the sandbox is its own process and
answers at once); each request's `time.thread_time()` is taken, so the figures are the
app's own CPU (not the database server's, nor the sandbox's), and hold on a busy machine
far better than wall-clock throughput. Prints the median and mean per request in ms. With
`--profile DIR`, pyinstrument trees of the same requests are written to DIR as well.
The PostgreSQL database is `bench` (dropped and created again, as by `bench/run.py`).
"""

# ruff: noqa: S603  (starts flask for the schema and the sandbox)
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.run import (
    PG_URL,
    ROOT,
    app_for,
    base_env,
    ensure_pg_database,
    form_body,
    free_port,
    notify_body,
    seed_checkouts,
    seed_pending_attempts,
    server,
    shopper_ip,
)

FORM = "application/x-www-form-urlencoded"


def measure(label: str, n: int, profile_dir: Path | None) -> dict[str, float]:
    work = ROOT / "bench" / "out" / f"cpu-{label}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    (work / "metrics").mkdir()
    if label == "postgresql":
        ensure_pg_database()
        url = PG_URL
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    app_port, sandbox_port = free_port(), free_port()
    env = base_env(work, url, app_port, sandbox_port)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    sandbox = env["CHECKOUT_SANDBOX_URL"]
    out: dict[str, float] = {}
    with (
        server([*flask, "sandbox"], env, work / "logs" / "sandbox.log", sandbox),
        app_for(env) as app,
    ):
        [page_id] = seed_checkouts(app, 1)
        create_ids = seed_checkouts(app, n + 20)
        pending = seed_pending_attempts(app, n + 20)
        client = app.test_client()

        def notify(i: int) -> Any:
            trade_no, platform_no = pending[i]
            body = notify_body(trade_no, platform_no)
            return client.post("/notify/paypro_kr", data=body, content_type="application/json"), 200

        def page(_i: int) -> Any:
            return client.get(f"/c/{page_id}"), 200

        def create(i: int) -> Any:
            cid = create_ids[i]
            resp = client.post(
                f"/c/{cid}?method=kakaopay", data=form_body(cid), content_type=FORM,
                headers={"X-Forwarded-For": shopper_ip(i)},
            )  # fmt: skip
            return resp, 303

        for name, call in (("page", page), ("notify", notify), ("create", create)):
            for i in range(10):  # warm up
                call(i)
            times = []
            profiler = None
            if profile_dir is not None:
                from pyinstrument import Profiler

                profiler = Profiler(interval=0.0002)
                profiler.start()
            for i in range(10, n + 10):
                start = time.thread_time()
                resp, status = call(i)
                times.append(time.thread_time() - start)
                assert resp.status_code == status, (name, resp.status_code, resp.text[:300])
            if profiler is not None and profile_dir is not None:
                profiler.stop()
                text = profiler.output_text(unicode=False, color=False, show_all=False)
                (profile_dir / f"cpu-{name}-{label}.txt").write_text(text)
            out[f"{name}_median_ms"] = statistics.median(times) * 1000
            out[f"{name}_mean_ms"] = statistics.fmean(times) * 1000
            # The quietest tenth: what the code costs when the machine's other users leave
            # the caches and the core alone (the median drifts with them).
            out[f"{name}_p10_ms"] = statistics.quantiles(times, n=10)[0] * 1000
    return out


def concurrent(label: str, shoppers: tuple[int, ...], latency: float, n: int) -> None:
    """Creates from many threads at once in this one process (one gunicorn worker's share of
    the bench's shoppers), the sandbox answering after `latency` s: this process's and the
    sandbox's CPU per create, and the provider and database connections opened per create.
    What grows with the shoppers in flight shows here without a full bench run."""
    import threading

    import urllib3.connectionpool
    from sqlalchemy import event

    from bench.run import set_latency

    work = ROOT / "bench" / "out" / f"concurrent-{label}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    (work / "metrics").mkdir()
    if label == "postgresql":
        ensure_pg_database()
        url = PG_URL
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    env = base_env(work, url, free_port(), free_port())
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    sandbox = env["CHECKOUT_SANDBOX_URL"]
    opened = {"http": 0, "db": 0}
    new_conn = urllib3.connectionpool.HTTPConnectionPool._new_conn

    def counted_new_conn(pool: Any) -> Any:
        opened["http"] += 1
        return new_conn(pool)

    urllib3.connectionpool.HTTPConnectionPool._new_conn = counted_new_conn  # type: ignore[method-assign]
    with (
        server([*flask, "sandbox"], env, work / "logs" / "sandbox.log", sandbox) as sandbox_pid,
        app_for(env) as app,
    ):

        def counted_connect(*_args: Any) -> None:
            opened["db"] += 1

        event.listen(app.extensions["db"].engine, "connect", counted_connect)
        set_latency(sandbox, latency)
        for threads in shoppers:
            ids = seed_checkouts(app, n)
            todo = list(enumerate(ids))
            lock = threading.Lock()
            failed: list[int] = []

            def shopper(
                todo: list[tuple[int, str]] = todo,
                lock: threading.Lock = lock,
                failed: list[int] = failed,
                threads: int = threads,
            ) -> None:
                client = app.test_client()
                while True:
                    with lock:
                        if not todo:
                            return
                        i, cid = todo.pop()
                    resp = client.post(
                        f"/c/{cid}?method=kakaopay", data=form_body(cid), content_type=FORM,
                        headers={"X-Forwarded-For": shopper_ip(threads * 100_000 + i)},
                    )  # fmt: skip
                    if resp.status_code != 303:
                        failed.append(resp.status_code)

            opened.update(http=0, db=0)
            cpu, sandbox_cpu, wall = time.process_time(), proc_cpu(sandbox_pid), time.monotonic()
            workers = [threading.Thread(target=shopper) for _ in range(threads)]
            for worker in workers:
                worker.start()
            for worker in workers:
                worker.join()
            wall = time.monotonic() - wall
            cpu = time.process_time() - cpu
            sandbox_cpu = proc_cpu(sandbox_pid) - sandbox_cpu
            print(
                f"{label} {threads} shoppers, provider {latency:g} s: {n / wall:.0f} creates/s, "
                f"app CPU {cpu / n * 1000:.2f} ms, sandbox CPU {sandbox_cpu / n * 1000:.2f} ms per "
                f"create; per create {opened['http'] / n:.2f} new provider connections, "
                f"{opened['db'] / n:.2f} new database connections; failed {len(failed)}",
                flush=True,
            )
        set_latency(sandbox, None)


def proc_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def served(label: str, seconds: int) -> dict[str, float]:
    """The page under gunicorn (1 worker, the bench's threads), driven by wrk: the worker's
    CPU seconds per request, for the checkout and the bare page that reads one row."""
    from sqlalchemy import create_engine, insert

    from bench.bare_app import metadata, shops
    from bench.run import gunicorn, write_requests, wrk

    work = ROOT / "bench" / "out" / f"served-{label}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    if label == "postgresql":
        ensure_pg_database()
        url = PG_URL
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    app_port, sandbox_port, bare_port = free_port(), free_port(), free_port()
    env = base_env(work, url, app_port, sandbox_port)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    with app_for(env) as app:
        [page_id] = seed_checkouts(app, 1)
    bare_env = {**env, "BENCH_PAGE_BYTES": "5813"}
    bare_env.pop("PROMETHEUS_MULTIPROC_DIR")
    engine = create_engine(url)
    metadata.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(shops).values(id=1, name="Demo Shop"))
    engine.dispose()
    out = {}
    for who, app_name, port, path, the_env in (
        ("app", "wsgi:app", app_port, f"/c/{page_id}", env),
        ("bare", "bench.bare_app:app", bare_port, "/page-read", bare_env),
    ):
        cmd = [*gunicorn(app_name, port)]
        cmd[cmd.index("--workers") + 1] = "1"
        base = f"http://127.0.0.1:{port}"
        with server(cmd, the_env, work / "logs" / f"{who}.log", base + path) as master:
            time.sleep(1)
            [worker] = Path(f"/proc/{master}/task/{master}/children").read_text().split()
            reqs = write_requests(work / f"{who}.txt", [("GET", path, "", "")])
            wrk(base, reqs, 16, 2)  # warm up
            before = proc_cpu(int(worker))
            result = wrk(base, reqs, 16, seconds)
            used = proc_cpu(int(worker)) - before
            assert result["errors"] == 0, result
            out[f"{who}_ms"] = used / result["requests"] * 1000
    out["ratio"] = out["bare_ms"] / out["app_ms"]
    return out


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("databases", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--profile", type=Path)
    parser.add_argument("--served", type=int, metavar="SECONDS", help="the page under gunicorn")
    parser.add_argument(
        "--concurrent", metavar="SHOPPERS", help="creates from threads at once, e.g. 25,125"
    )
    parser.add_argument("--latency", type=float, default=0.2, help="with --concurrent")
    args = parser.parse_args()
    if args.concurrent:
        counts = tuple(int(x) for x in args.concurrent.split(","))
        for label in args.databases:
            concurrent(label, counts, args.latency, args.n)
        return 0
    if args.served:
        for label in args.databases:
            figures = served(label, args.served)
            print(label, "served", " ".join(f"{k}={v:.3f}" for k, v in figures.items()))
        return 0
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    for label in args.databases:
        figures = measure(label, args.n, args.profile)
        print(label, " ".join(f"{k}={v:.2f}" for k, v in figures.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
