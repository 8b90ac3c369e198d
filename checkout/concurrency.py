"""Turns for payment creations: how many of one process do their own work at once.

A create spends most of its time waiting for the provider (0.2 to 2 s on a bad day) and a
few milliseconds computing before and after. On a sale day hundreds of them are in flight:
if all their threads competed for the interpreter at once, a page, a notify or a health
check would queue behind them. So a create takes a turn for its own work, gives it back
while it waits for the provider (then it holds no CPU, nothing to share), and takes one
again for the answer. Pages, notifies and health checks take no turn: they only ever
compete with a few creates, however many are waiting on providers. Throughput is the same
(the CPU does the same work); what changes is who waits.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class CreateTurns:
    """At most `turns` creations of this process at work at once (0: no limit)."""

    def __init__(self, turns: int) -> None:
        self.turns = turns
        self._semaphore = threading.BoundedSemaphore(turns) if turns > 0 else None
        self._local = threading.local()  # whether this thread holds a turn now
        self._working = 0
        self._count_lock = threading.Lock()

    @property
    def working(self) -> int:
        """How many threads hold a turn now."""
        return self._working

    def _take(self) -> None:
        if self._semaphore is not None:
            self._semaphore.acquire()
        with self._count_lock:
            self._working += 1
        self._local.held = True

    def _give(self) -> None:
        self._local.held = False
        with self._count_lock:
            self._working -= 1
        if self._semaphore is not None:
            self._semaphore.release()

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Hold a turn for the block (a thread already holding one just goes on)."""
        if getattr(self._local, "held", False):
            yield
            return
        self._take()
        try:
            yield
        finally:
            self._give()

    @contextmanager
    def given_back(self) -> Iterator[None]:
        """Wait (for a provider) without a turn, then take one again."""
        if not getattr(self._local, "held", False):
            yield
            return
        self._give()
        try:
            yield
        finally:
            self._take()
