"""Instructions per request, counted by valgrind: the checkout page GET, a notify, a create.

    .venv/bin/python -m bench.instructions [sqlite|postgresql ...] [--paths page,notify,create]
                                           [--requests 100,400]

Throughput on this shared VM moves by 0.1 to 0.2 between runs minutes apart, and CPU time
with it; the instructions a request executes do not move with the machine. Each path runs
in-process (the Flask test client, as bench/cpu.py) under `valgrind --tool=callgrind`
twice, with the same seeds and the two request counts; the difference of the two totals
over the difference of the counts is what one request costs, start-up, seeding and warm-up
cancelled out. The database server's work is not counted (it is another process), nor the
sandbox's. Two checkouts of the code measured this way, one after the other, tell whether a
change made a request cheaper, whatever else the machine is doing (bench/notes.md).
"""

# ruff: noqa: S603  (starts flask for the schema, and valgrind)
from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

# Only what bench/run.py has had since 2026-12-05: this file copied into an older checkout's
# bench/ measures that code the same way (hence its own few lines of set-up, as bench/cpu.py's).
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

SEEDS = 1_000  # pending attempts seeded for every run, whatever its count (the same database)
WARM_UP = 10


def inner(label: str, path: str, count: int, url: str, work: Path) -> None:
    """Under valgrind: seed, warm up, then `count` requests of one path. The sandbox (for
    the create) is its own process, which valgrind does not follow."""
    env = base_env(work, url, free_port(), free_port())
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    sandbox = env["CHECKOUT_SANDBOX_URL"]
    with ExitStack() as stack:
        if path == "create":  # only then: waiting for it to start polls a varying number of times
            stack.enter_context(server([*flask, "sandbox"], env, work / "logs" / "sb.log", sandbox))
        app = stack.enter_context(app_for(env))
        [page_id] = seed_checkouts(app, 1)
        pending = seed_pending_attempts(app, SEEDS)
        open_ids = seed_checkouts(app, SEEDS) if path == "create" else []
        client = app.test_client()
        for i in range(WARM_UP + count):
            if path == "page":
                resp, status = client.get(f"/c/{page_id}"), 200
            elif path == "notify":
                trade_no, platform_no = pending[i]
                body = notify_body(trade_no, platform_no)
                resp = client.post("/notify/paypro_kr", data=body, content_type="application/json")
                status = 200
            else:
                cid = open_ids[i]
                resp = client.post(
                    f"/c/{cid}?method=kakaopay", data=form_body(cid), content_type=FORM,
                    headers={"X-Forwarded-For": shopper_ip(i)},
                )  # fmt: skip
                status = 303
            assert resp.status_code == status, (label, path, resp.status_code, resp.text[:300])


def total_instructions(label: str, path: str, count: int) -> int:
    work = ROOT / "bench" / "out" / f"instructions-{label}-{path}-{count}"
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    (work / "metrics").mkdir()
    if label == "postgresql":
        ensure_pg_database()
        url = PG_URL
    else:
        url = f"sqlite:///{work / 'bench.db'}"
    env = base_env(work, url, free_port(), free_port())
    # The same hashes in every run: set and dict order, and so the work, do not vary.
    env["PYTHONHASHSEED"] = "0"
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    subprocess.run([*flask, "db-upgrade"], env=env, cwd=ROOT, check=True, timeout=120,
                   capture_output=True)  # fmt: skip
    out = work / "callgrind.out"
    cmd = [
        "valgrind", "--tool=callgrind", f"--callgrind-out-file={out}",
        sys.executable, "-m", "bench.instructions", "--inner", label, path, str(count), url,
        str(work),
    ]  # fmt: skip
    subprocess.run(cmd, env=env, cwd=ROOT, check=True, timeout=3600, capture_output=True)
    for line in out.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("databases", nargs="*", default=["sqlite", "postgresql"])
    parser.add_argument("--paths", default="page,notify,create")
    parser.add_argument("--requests", default="100,400", help="the two request counts")
    parser.add_argument("--inner", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.inner:
        label, path, count, url, work = args.inner
        inner(label, path, int(count), url, Path(work))
        return 0
    if shutil.which("valgrind") is None:
        print("valgrind is needed (apt-get install valgrind)", file=sys.stderr)
        return 2
    low, high = (int(x) for x in args.requests.split(","))
    if not 0 < low < high <= SEEDS - WARM_UP:
        parser.error(f"--requests: two counts, 0 < low < high <= {SEEDS - WARM_UP}")
    for label in args.databases:
        for path in args.paths.split(","):
            totals = [total_instructions(label, path, count) for count in (low, high)]
            per_request = (totals[1] - totals[0]) / (high - low)
            print(
                f"{label} {path}: {per_request / 1e6:.3f} M instructions per request "
                f"(totals {totals[0]:,} at {low}, {totals[1]:,} at {high})",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
