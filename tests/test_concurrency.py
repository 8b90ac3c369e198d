"""Payment creations work in turns and give their turn back while the provider answers."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from checkout.concurrency import CreateTurns
from tests.conftest import LiveApp
from tests.support.shopper import KR_PAYER, Shopper, create_checkout


def test_at_most_n_threads_hold_a_turn() -> None:
    turns = CreateTurns(2)
    peak, lock = [0], threading.Lock()

    def work() -> None:
        with turns.taken():
            with lock:
                peak[0] = max(peak[0], turns.working)
            time.sleep(0.05)

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: work(), range(16)))
    assert peak[0] == 2 and turns.working == 0


def test_a_thread_waiting_without_its_turn_lets_another_work() -> None:
    turns = CreateTurns(1)
    waiting, other_worked = threading.Event(), threading.Event()

    def slow_payment() -> None:
        with turns.taken(), turns.given_back():
            waiting.set()
            assert other_worked.wait(5)  # the other got the only turn meanwhile

    def other() -> None:
        assert waiting.wait(5)
        with turns.taken():
            other_worked.set()

    threads = [threading.Thread(target=slow_payment), threading.Thread(target=other)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert other_worked.is_set() and turns.working == 0


def test_nested_and_unheld_uses_are_harmless() -> None:
    turns = CreateTurns(1)
    with turns.given_back():  # no turn held: nothing to give back
        assert turns.working == 0
    with turns.taken(), turns.taken():  # the same thread again: no second turn, no deadlock
        assert turns.working == 1
    assert turns.working == 0
    unlimited = CreateTurns(0)
    with unlimited.taken():
        assert unlimited.working == 1


@pytest.mark.app_config(create_payment_turns=1)
def test_a_payment_waiting_on_its_provider_does_not_block_the_next(live_app: LiveApp) -> None:
    """One turn per process and a provider answering after 1.5 s: two shoppers paying at once
    both get their cashier in about 1.5 s, not one after the other (3 s), and a page load
    meanwhile is not held up by either."""
    delay = 1.5
    live_app.sandbox.state.inject_fault("paypro", "slow", delay=delay, count=2)
    checkouts = [create_checkout(live_app.url, amount=15000, currency="KRW") for _ in range(2)]

    def pay(checkout: dict) -> int:
        return Shopper(checkout["url"]).submit("kakaopay", KR_PAYER).status_code

    started = time.monotonic()
    with ThreadPoolExecutor(2) as pool:
        paying = pool.map(pay, checkouts)
        time.sleep(delay / 3)
        page_started = time.monotonic()
        page = requests.get(checkouts[0]["url"], timeout=10)
        page_seconds = time.monotonic() - page_started
        statuses = list(paying)
    elapsed = time.monotonic() - started
    assert statuses == [303, 303]
    assert elapsed < 2 * delay  # both waited on the provider at the same time
    assert page.status_code in (200, 303) and page_seconds < delay / 2
