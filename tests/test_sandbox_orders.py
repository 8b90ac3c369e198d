"""The sandbox finds an order by the merchant's trade number without reading every order.

Every create asks whether its trade number was used before; a scan of all orders grew with
each order made (the benchmark's sandbox spent 3 ms per create at 30,000, under the lock
every request takes).
"""

from __future__ import annotations

from checkout.domain.money import Money
from checkout.sandbox.core import SandboxConfig, SandboxOrder, SandboxState


class _NotScanned(dict):
    """The orders, refusing to be read one by one."""

    def values(self):  # type: ignore[override]
        raise AssertionError("every order was read to find one trade number")

    def __iter__(self):  # type: ignore[override]
        raise AssertionError("every order was read to find one trade number")


def _order(provider: str, order_id: str, merchant: str, trade_no: str) -> SandboxOrder:
    return SandboxOrder(provider, order_id, merchant, trade_no, Money(15000, "KRW"), None, None)


def test_an_order_is_found_by_its_trade_number_without_reading_every_order() -> None:
    state = SandboxState(SandboxConfig())
    first = state.add(_order("paypro", "P1", "M1", "T1"))
    state.add(_order("paypro", "P2", "M1", "T2"))
    state.add(_order("paypro", "P3", "M2", "T1"))  # another merchant's T1
    state.add(_order("teemopay", "E1", "M1", "T1"))  # another provider's
    state.add(_order("paypro", "P4", "M1", "T1"))  # a second order under the same number
    state.orders = _NotScanned(state.orders)

    assert state.find_by_trade_no("paypro", "M1", "T1") is first  # the first one made
    assert state.find_by_trade_no("paypro", "M2", "T1").id == "P3"
    assert state.find_by_trade_no("teemopay", "M1", "T1").id == "E1"
    assert state.find_by_trade_no("paypro", "M1", "T9") is None
    assert state.find_by_trade_no("diamondpay", "M1", "T1") is None
