"""SQLite writers take turns in a queue (checkout/store/db.py SQLiteWriteQueue), never polling."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from checkout.store.db import SQLiteWriteQueue, make_engine

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import sys, threading
from sqlalchemy import text
from checkout.store.db import make_engine
engine = make_engine(sys.argv[1])
def work():
    for _ in range(int(sys.argv[2])):
        with engine.begin() as conn:
            value = conn.execute(text("SELECT value FROM counter")).scalar_one()
            conn.execute(text("UPDATE counter SET value = :v"), {"v": value + 1})
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads: t.start()
for t in threads: t.join()
"""


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'writes.db'}"
    with make_engine(url).begin() as conn:
        conn.execute(text("CREATE TABLE counter (value INTEGER NOT NULL)"))
        conn.execute(text("INSERT INTO counter VALUES (0)"))
    return url


def test_writers_in_several_processes_and_threads_all_get_their_turn(
    sqlite_url: str, tmp_path: Path
) -> None:
    """3 processes x 4 threads x 25 read-modify-write transactions: no 'database is locked',
    no lost update, and every write went through the queue's lock file."""
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, sqlite_url, "25"], cwd=ROOT)
        for _ in range(3)
    ]
    assert [p.wait(timeout=120) for p in procs] == [0, 0, 0]
    with make_engine(sqlite_url).connect() as conn:
        assert conn.execute(text("SELECT value FROM counter")).scalar_one() == 300
    assert (tmp_path / "writes.db.write-lock").exists()


def test_a_writer_waits_for_the_turn_and_gets_it_when_the_holder_ends(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    order: list[str] = []
    holder = engine.connect()
    holder.begin()
    holder.execute(text("UPDATE counter SET value = 1"))

    def second() -> None:
        with engine.begin() as conn:  # waits for its turn, not on SQLite's busy timeout
            order.append("second")
            conn.execute(text("UPDATE counter SET value = value + 1"))

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.3)
    assert order == []  # still waiting
    order.append("first commits")
    holder.commit()
    thread.join(5)
    assert order == ["first commits", "second"]
    holder.close()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT value FROM counter")).scalar_one() == 2


@pytest.mark.parametrize("end", ["rollback", "close"])
def test_the_turn_is_given_back_however_the_transaction_ends(sqlite_url: str, end: str) -> None:
    engine = make_engine(sqlite_url)
    conn = engine.connect()
    conn.begin()
    conn.execute(text("UPDATE counter SET value = 5"))
    if end == "rollback":
        conn.rollback()
    conn.close()  # "close": returned to the pool with the transaction open
    started = time.monotonic()
    with engine.begin() as other:
        other.execute(text("UPDATE counter SET value = value + 1"))
    assert time.monotonic() - started < 1  # no wait for a turn nobody holds
    with engine.connect() as check:
        assert check.execute(text("SELECT value FROM counter")).scalar_one() == 1


def test_reads_do_not_queue_behind_a_writer(sqlite_url: str) -> None:
    from checkout.store.db import _reading

    engine = make_engine(sqlite_url)
    writer = engine.connect()
    writer.begin()
    writer.execute(text("UPDATE counter SET value = 9"))
    token = _reading.set(True)
    try:
        started = time.monotonic()
        with engine.connect() as reader:
            assert reader.execute(text("SELECT value FROM counter")).scalar_one() == 0
        assert time.monotonic() - started < 1
    finally:
        _reading.reset(token)
        writer.rollback()
        writer.close()


def test_a_nested_write_in_the_same_thread_does_not_deadlock_on_the_queue(
    tmp_path: Path,
) -> None:
    queue = SQLiteWriteQueue(str(tmp_path / "x.db"))
    queue.acquire()
    queue.acquire()  # the same thread again: counted, not blocked
    queue.release()
    got = threading.Event()

    def other() -> None:
        queue.acquire()
        got.set()
        queue.release()

    thread = threading.Thread(target=other)
    thread.start()
    assert not got.wait(0.2)  # still held once
    queue.release()
    assert got.wait(5)
    thread.join(5)
