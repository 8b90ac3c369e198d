"""The benchmark's targets are issue 25's table, and the report judges each figure by them.

Pure: bench/run.py's report is built from a results dict; no server is started.
"""

from __future__ import annotations

import pytest

from bench import run


def test_the_targets_are_the_issues_table() -> None:
    assert run.TARGETS == {
        "create_0.2_100": 0.75,
        "create_0.2_500": 0.75,
        "create_2.0_500": 0.75,
        "create_2.0_100": 0.95,
        "notify_postgresql": 0.55,
        "page_postgresql": 0.8,
        "page_sqlite": 0.7,
    }
    assert run.NOTIFY_SQLITE_P99_MS == 500


def _load(rps: float, p99_ms: float = 100.0) -> dict:
    return {"rps": rps, "errors": 0, "wrapped": False, "p50_us": 1000, "p99_us": p99_ms * 1000}


def _results(scale: float, notify_p99_ms: float) -> dict:
    """Every figure `scale` times its baseline (the bare side at 100/s)."""
    r: dict = {}
    for db in ("sqlite", "postgresql"):
        r[f"page_app_{db}"] = _load(100 * scale)
        r[f"page_bare_{db}"] = _load(300)
        r[f"pageread_bare_{db}"] = _load(100)
        r[f"notify_app_{db}"] = _load(100 * scale, notify_p99_ms)
        r[f"notify_bare_{db}"] = _load(100)
    probe = {"p99": 0.05, "max": 0.1, "errors": 0, "n": 50}
    for latency in (0.2, 2.0):
        for shoppers in (100, 500):
            r[f"create_{latency}_{shoppers}"] = {
                **_load(100 * scale),
                "bound": 10_000.0,
                "attempts": {"pending": 10},
                "probes": {"page": probe, "health": probe},
                "cpu_per_request": 0.01,
                "cpu_bound": 200.0,
            }
            r[f"create_bare_{latency}_{shoppers}"] = {**_load(100), "cpu_per_request": 0.005}
    return r


EXTRA = {
    "page_bytes": 5813,
    "bare_bytes": 5828,
    "va": {"va_p50": 0.004, "va_p99": 0.005, "qr_p50": 0.003},
    "hwm_kb": [120_000],
}


def _target_cells(rows: list[str]) -> dict[str, str]:
    """Each measurement row's first words -> its target cell."""
    cells = {}
    for row in rows[2:]:
        parts = [p.strip() for p in row.strip("|").split("|")]
        cells[parts[0]] = parts[-1]
    return cells


@pytest.mark.parametrize(
    ("prefix", "least"),
    [
        ("checkout page GET on sqlite, req/s", 0.7),
        ("checkout page GET on postgresql, req/s", 0.8),
        ("notify (signed, valid, distinct orders) on postgresql", 0.55),
        ("create payment, provider 0.2 s, 100 shoppers", 0.75),
        ("create payment, provider 0.2 s, 500 shoppers", 0.75),
        ("create payment, provider 2 s, 500 shoppers", 0.75),
        ("create payment, provider 2 s, 100 shoppers", 0.95),
    ],
)
def test_each_ratio_is_judged_by_its_target(prefix: str, least: float) -> None:
    def cell(scale: float) -> str:
        cells = _target_cells(run.table(_results(scale, 100), EXTRA))
        [found] = [v for k, v in cells.items() if k.startswith(prefix)]
        return found

    assert cell(least).startswith(f">= {least:g}: met")
    assert cell(least - 0.02).startswith(f">= {least:g}: **not met**")


def test_the_sqlite_notify_p99_is_judged_by_its_target() -> None:
    def cell(p99_ms: float) -> str:
        cells = _target_cells(run.table(_results(1.0, p99_ms), EXTRA))
        return cells["notify on sqlite p50 / p99, ms (64 conns)"]

    assert cell(499) == "p99 < 500: met"
    assert cell(501) == "p99 < 500: **not met**"
