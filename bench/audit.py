"""`python3 dev.py audit`: Lighthouse (mobile profile) on the shopper's checkout form and a
bank-details page; the scores go to docs/audit.md.

Lighthouse is npm's `lighthouse@12.2.3` (runs on Node 20), installed into .ci/node/ when
missing; Chrome is Debian's chromium (CHROME_PATH). The app runs as `python3 dev.py run`
does (sandbox mode, SQLite in a temporary folder) on free loopback ports.

    python3 dev.py audit             # report
    python3 dev.py audit --enforce   # and exit 1 below the thresholds CI keeps
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
NODE_DIR = ROOT / ".ci" / "node"
LIGHTHOUSE_VERSION = "12.2.3"
LIGHTHOUSE = NODE_DIR / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROMIUM = "/usr/bin/chromium"
REPORT = ROOT / "docs" / "audit.md"
OUT = ROOT / "bench" / "out"
CATEGORIES = ("performance", "accessibility", "best-practices")
# What CI enforces; performance (target 95) depends on the machine, so it is reported only.
ENFORCED = {"accessibility": 100, "best-practices": 95}
TARGETS = {"performance": 95, **ENFORCED}
RUN_TIMEOUT = 180  # seconds, one Lighthouse run
CSRF_RE = re.compile(r'name="csrf_token" type="hidden" value="([^"]+)"')


@dataclass(frozen=True)
class Audited:
    name: str
    url: str
    scores: dict[str, int]
    failing: list[str]  # audits below 1 in the enforced categories


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_lighthouse() -> None:
    if LIGHTHOUSE.exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed for Lighthouse (apt-get install npm)")
    subprocess.run(  # noqa: S603 - npm from PATH, fixed arguments
        [npm, "install", "--prefix", str(NODE_DIR), "--no-audit", "--no-fund",
         f"lighthouse@{LIGHTHOUSE_VERSION}"],
        check=True,
        timeout=600,
    )  # fmt: skip


def start_app(workdir: Path) -> tuple[subprocess.Popen[str], str, list[str]]:
    """The devserver on free ports; returns it, its base URL and the checkout URLs it printed."""
    app_port, sandbox_port, shop_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "CHECKOUT_INSTANCE_PATH": str(workdir / "instance"),
        "CHECKOUT_PUBLIC_BASE_URL": f"http://127.0.0.1:{app_port}",
        "CHECKOUT_SANDBOX_URL": f"http://127.0.0.1:{sandbox_port}",
        "CHECKOUT__STORES__DEMO__WEBHOOK_URL": f"http://127.0.0.1:{shop_port}/webhooks",
        "PYTHONUNBUFFERED": "1",
    }
    env.pop("CHECKOUT_CONFIG", None)
    env.pop("DATABASE_URL", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "checkout.devtools.devserver"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()  # type: ignore[arg-type]
    deadline = time.monotonic() + 90
    while not any("Mexican checkout" in line for line in lines):
        if time.monotonic() > deadline or proc.poll() is not None:
            proc.kill()
            sys.exit("the app did not start:\n" + "".join(lines))
        time.sleep(0.1)
    base = f"http://127.0.0.1:{app_port}"
    for _ in range(100):
        try:
            requests.get(base + "/healthz", timeout=2)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    return proc, base, re.findall(r"checkout \([^)]*\): (\S+)", "".join(lines))


def another_checkout(base: str) -> str:
    """A KRW checkout of the demo store, through the shop API."""
    resp = requests.post(
        f"{base}/api/v1/checkouts",
        headers={"Authorization": "Bearer sk_test_demo"},
        json={
            "order_id": f"audit-{time.time_ns()}",
            "amount": 30000,
            "currency": "KRW",
            "return_url": f"{base}/demo/shop-return",
            "locale": "ko",
        },
        timeout=10,
    )
    resp.raise_for_status()
    return str(resp.json()["url"])


def bank_details_url(checkout_url: str) -> str:
    """Submit the form for TeemoPay's virtual account: our bank-details page."""
    http = requests.Session()
    http.headers["Sec-Fetch-Dest"] = "document"
    page = http.get(checkout_url, params={"method": "teemopay_va"}, timeout=10)
    token = CSRF_RE.search(page.text)
    assert token, "no form token"
    resp = http.post(
        checkout_url,
        data={
            "csrf_token": token.group(1),
            "method": "teemopay_va",
            "shown_method": "teemopay_va",
            "first_name": "민수",
            "last_name": "김",
            "mobile": "010-1234-5678",
        },
        allow_redirects=False,
        timeout=30,
    )
    assert resp.status_code == 303, resp.text[:500]
    return checkout_url.split("/c/", 1)[0] + resp.headers["Location"]


def lighthouse(name: str, url: str) -> Audited:
    OUT.mkdir(parents=True, exist_ok=True)
    output = OUT / f"lighthouse-{name}.json"
    env = {**os.environ, "CHROME_PATH": CHROMIUM}
    subprocess.run(  # noqa: S603 - our own URL and fixed arguments
        [
            node(),
            str(LIGHTHOUSE),
            url,
            "--quiet",
            "--output=json",
            f"--output-path={output}",
            f"--only-categories={','.join(CATEGORIES)}",
            "--form-factor=mobile",  # Lighthouse's default: Moto G Power, slow 4G, 4x CPU
            "--chrome-flags=--headless=new --no-sandbox --disable-background-networking",
        ],
        check=True,
        env=env,
        timeout=RUN_TIMEOUT,
    )
    report = json.loads(output.read_text())
    scores = {c: round(report["categories"][c]["score"] * 100) for c in CATEGORIES}
    failing = []
    for category in ENFORCED:
        for ref in report["categories"][category]["auditRefs"]:
            audit = report["audits"][ref["id"]]
            if ref.get("weight", 0) and audit.get("score") is not None and audit["score"] < 1:
                failing.append(f"{category}: {ref['id']} ({audit['title']})")
    return Audited(name, url, scores, failing)


def write_report(results: list[Audited]) -> None:
    lines = [
        "# Lighthouse audit of the shopper pages",
        "",
        f"`python3 dev.py audit`, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: Lighthouse "
        f"{LIGHTHOUSE_VERSION} (npm, Node {node_version()}), mobile profile (simulated slow 4G, "
        f"4x CPU slowdown), Debian's chromium, on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} CPUs). The app runs as `python3 dev.py run` does (sandbox, SQLite).",
        "",
        "| page | performance | accessibility | best practices |",
        "|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.scores['performance']} | {r.scores['accessibility']} | "
            f"{r.scores['best-practices']} |"
        )
    lines += [
        "",
        "Targets: accessibility 100, best practices at least 95 (both enforced by `.ci/run`), "
        "performance at least 95 (reported: it depends on the machine's load).",
        "",
    ]
    failing = [f"- {r.name}: {f}" for r in results for f in r.failing]
    lines += ["Audits below full marks in the enforced categories:", ""]
    lines += failing or ["- none"]
    lines.append("")
    REPORT.write_text("\n".join(lines))


def node() -> str:
    found = shutil.which("node")
    if found is None:
        sys.exit("Lighthouse needs Node 20 (apt-get install nodejs)")
    return found


def node_version() -> str:
    out = subprocess.run(  # noqa: S603
        [node(), "--version"], capture_output=True, text=True, timeout=10
    )
    return out.stdout.strip().lstrip("v")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 dev.py audit", description=__doc__)
    parser.add_argument("--enforce", action="store_true", help="exit 1 below CI's thresholds")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        sys.exit(f"Lighthouse needs Chromium at {CHROMIUM} (apt-get install chromium)")
    ensure_lighthouse()
    with tempfile.TemporaryDirectory() as work:
        proc, base, urls = start_app(Path(work))
        try:
            form = f"{urls[0]}?method=kakaopay"
            details = bank_details_url(another_checkout(base))
            results = [lighthouse("checkout form", form), lighthouse("bank details", details)]
        finally:
            proc.terminate()
            proc.wait(10)
    write_report(results)
    print(REPORT.read_text())
    below = [
        f"{r.name}: {c} {r.scores[c]} < {minimum}"
        for r in results
        for c, minimum in ENFORCED.items()
        if r.scores[c] < minimum
    ]
    if below:
        print("below the thresholds:\n  " + "\n  ".join(below), file=sys.stderr)
    return 1 if below and args.enforce else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
