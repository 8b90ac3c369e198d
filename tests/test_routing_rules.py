"""Routing and circuit-breaker decisions, pure (checkout/domain/routing.py, circuit.py)."""

from __future__ import annotations

import random
import threading
from datetime import UTC, date, datetime, timedelta

import pytest

from checkout.config import BreakerConfigError, ConfigError, breaker_settings, build_settings
from checkout.domain.circuit import BreakerSettings, Call, CircuitState, CircuitView, circuit_view
from checkout.domain.routing import (
    SkipReason,
    failover_reason,
    merge_payer_rules,
    order_routes,
    payer_fits,
)
from checkout.providers import diamondpay, paypro, teemopay
from checkout.providers.base import Need, Payer, PayerRules, RouteConfig
from checkout.providers.errors import ProviderError, ProviderTimeout
from checkout.services.circuits import CircuitBreakers

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def r(provider: str, weight: int | None = None) -> RouteConfig:
    return RouteConfig(provider, {}, weight)


# ---------------------------------------------------------------- order
def test_unweighted_routes_keep_their_order() -> None:
    routes = [r("a"), r("b"), r("c")]
    assert [x.provider for x in order_routes(routes, random.Random(1))] == ["a", "b", "c"]


def test_weighted_neighbours_share_traffic_in_proportion() -> None:
    routes = [r("a", 3), r("b", 1), r("c")]
    rng = random.Random(7)
    firsts = [order_routes(routes, rng)[0].provider for _ in range(4000)]
    share = firsts.count("a") / len(firsts)
    assert 0.70 < share < 0.80  # 3 : 1
    # Each draw still lists every route once; the unweighted one stays last.
    for _ in range(50):
        drawn = [x.provider for x in order_routes(routes, rng)]
        assert sorted(drawn) == ["a", "b", "c"] and drawn[-1] == "c"


def test_weight_zero_is_only_a_backup_within_its_tier() -> None:
    routes = [r("first"), r("a", 0), r("b", 5)]
    for seed in range(20):
        drawn = [x.provider for x in order_routes(routes, random.Random(seed))]
        assert drawn == ["first", "b", "a"]


# ---------------------------------------------------------------- payer rules
PAYPRO_VA = PayerRules(
    name=Need.REQUIRED,
    email=Need.REQUIRED,
    mobile=Need.REQUIRED,
    birth_date=Need.REQUIRED,
    min_age=18,
    max_age=59,
)
TEEMOPAY = PayerRules(
    name=Need.REQUIRED,
    email=Need.OPTIONAL,
    mobile=Need.OPTIONAL,
    name_max_length=20,
    name_letters_only=True,
)
DIAMOND = PayerRules(name=Need.REQUIRED, email=Need.REQUIRED, mobile=Need.OPTIONAL)


@pytest.mark.parametrize(
    ("rules", "expected"),
    [
        ([PAYPRO_VA], PAYPRO_VA),  # one route: unchanged
        (
            [PAYPRO_VA, TEEMOPAY, DIAMOND],
            PayerRules(
                name=Need.REQUIRED,  # every route requires it
                email=Need.OPTIONAL,  # TeemoPay does not need it
                mobile=Need.OPTIONAL,
                birth_date=Need.OPTIONAL,  # only PayPro asks: optional on the form
                name_max_length=None,  # the loosest: someone can take a long name
                name_letters_only=False,
                min_age=None,
                max_age=None,
            ),
        ),
        (
            [PAYPRO_VA, PAYPRO_VA],
            PAYPRO_VA,
        ),
        (
            [TEEMOPAY, PayerRules(name=Need.REQUIRED, name_max_length=30, name_letters_only=True)],
            PayerRules(
                name=Need.REQUIRED,
                email=Need.OPTIONAL,
                mobile=Need.OPTIONAL,
                name_max_length=30,
                name_letters_only=True,
            ),
        ),
    ],
)
def test_merged_rules(rules: list[PayerRules], expected: PayerRules) -> None:
    assert merge_payer_rules(rules) == expected


def payer(**changes: object) -> Payer:
    values: dict[str, object] = {
        "first_name": "Minsu",
        "last_name": "Kim",
        "email": "minsu@example.com",
        "mobile": "01012345678",
        "birth_date": date(1990, 5, 17),
        "ip_address": "127.0.0.1",
    }
    values.update(changes)
    return Payer(**values)  # type: ignore[arg-type]


TODAY = date(2026, 12, 1)


@pytest.mark.parametrize(
    ("who", "fits"),
    [
        (payer(), (True, True, True)),
        (payer(birth_date=None), (False, True, True)),  # PayPro VA needs it
        (payer(birth_date=date(1950, 1, 1)), (False, True, True)),  # over 59
        (payer(email=None), (False, True, False)),
        (payer(first_name="Alexandrina", last_name="Montgomery"), (True, False, True)),  # > 20
        (payer(first_name="M1nsu"), (True, False, True)),  # letters only at TeemoPay
    ],
)
def test_each_route_judges_the_payer_by_its_own_rules(who: Payer, fits: tuple[bool, ...]) -> None:
    assert tuple(payer_fits(rules, who, TODAY) for rules in (PAYPRO_VA, TEEMOPAY, DIAMOND)) == fits


# ---------------------------------------------------------------- fail-over
@pytest.mark.parametrize(
    ("error", "created_nothing", "reason"),
    [
        (ProviderError("p", "connection_error", "refused", not_sent=True), False, "unreachable"),
        (ProviderError("p", "0100019", "cap"), True, "provider_refused"),
        (ProviderError("p", "00032", "unknown"), False, None),
        # The answer may have been lost after the provider acted: never fail over.
        (ProviderError("p", "connection_error", "reset", retryable=True), False, None),
        (ProviderError("p", "http_500", "HTTP 500", retryable=True), False, None),
        (ProviderTimeout("p", "timeout", "read timed out"), False, None),
        (ProviderTimeout("p", "timeout", "read timed out", not_sent=True), True, None),
    ],
)
def test_failover_only_when_nothing_was_created(
    error: ProviderError, created_nothing: bool, reason: str | None
) -> None:
    assert failover_reason(error, created_nothing) == (SkipReason(reason) if reason else None)


@pytest.mark.parametrize(
    ("check", "code", "message", "created_nothing"),
    [
        (paypro.mapping.refusal_created_nothing, "0100019", "", True),
        (paypro.mapping.refusal_created_nothing, "00029", "", True),
        (paypro.mapping.refusal_created_nothing, "5000", "", True),
        (paypro.mapping.refusal_created_nothing, "00032", "", False),
        (paypro.mapping.refusal_created_nothing, "invalid_response", "", False),
        (teemopay.mapping.refusal_created_nothing, "426", "merchant order duplicate", True),
        (teemopay.mapping.refusal_created_nothing, "412", "", True),
        (teemopay.mapping.refusal_created_nothing, "3", "Channel request error, fix", True),
        (teemopay.mapping.refusal_created_nothing, "3", "Unstable network", True),
        (teemopay.mapping.refusal_created_nothing, "3", "payment failed", False),
        (teemopay.mapping.refusal_created_nothing, "bad_response", "", False),
        (diamondpay.mapping.refusal_created_nothing, "0018", "", True),
        (diamondpay.mapping.refusal_created_nothing, "0004", "", True),
        (diamondpay.mapping.refusal_created_nothing, "amount_mismatch", "", False),
        (diamondpay.mapping.refusal_created_nothing, "bad_response", "", False),
    ],
)
def test_each_mapping_names_its_refusals_that_create_nothing(
    check: object, code: str, message: str, created_nothing: bool
) -> None:
    fn = check  # the three mappings' functions take (code) or (code, message)
    result = fn(code, message) if fn is teemopay.mapping.refusal_created_nothing else fn(code)  # type: ignore[operator]
    assert result is created_nothing


# ---------------------------------------------------------------- circuit
S = BreakerSettings(
    failures=3, error_rate=0.5, min_calls=4, window_seconds=60, cool_down_seconds=30
)


def calls(*spec: tuple[int, bool]) -> list[Call]:
    """(seconds after T0, failed)."""
    return [Call(T0 + timedelta(seconds=s), f) for s, f in spec]


@pytest.mark.parametrize(
    ("history", "now", "state", "reason"),
    [
        ([], 0, CircuitState.CLOSED, None),
        ([(0, True), (1, True)], 2, CircuitState.CLOSED, None),
        ([(0, True), (1, True), (2, True)], 3, CircuitState.OPEN, "consecutive_failures"),
        # A success ends the run; 2 of 4 failed is not above one half.
        ([(0, True), (1, True), (2, False), (3, False)], 4, CircuitState.CLOSED, None),
        # 3 of 5 failed in the window, never 3 in a row.
        (
            [(0, True), (1, False), (2, True), (3, False), (4, True)],
            5,
            CircuitState.OPEN,
            "error_rate",
        ),
        # The same calls spread beyond the window: too few in it.
        (
            [(0, True), (100, False), (200, True), (300, False), (400, True)],
            401,
            CircuitState.CLOSED,
            None,
        ),
        # Cool-down over: half-open, one probe may go.
        ([(0, True), (1, True), (2, True)], 32, CircuitState.HALF_OPEN, "consecutive_failures"),
        # Calls during the cool-down (in flight elsewhere) change nothing.
        ([(0, True), (1, True), (2, True), (10, False)], 20, CircuitState.OPEN, None),
        # The probe passed: closed, counts start again.
        ([(0, True), (1, True), (2, True), (33, False)], 34, CircuitState.CLOSED, None),
        ([(0, True), (1, True), (2, True), (33, False), (34, True)], 35, CircuitState.CLOSED, None),
        # The probe failed: another cool-down from the probe.
        ([(0, True), (1, True), (2, True), (33, True)], 50, CircuitState.OPEN, None),
        ([(0, True), (1, True), (2, True), (33, True)], 64, CircuitState.HALF_OPEN, None),
    ],
)
def test_circuit_states(
    history: list[tuple[int, bool]], now: int, state: CircuitState, reason: str | None
) -> None:
    view = circuit_view(calls(*history), T0 + timedelta(seconds=now), S)
    assert view.state == state
    if reason is not None:
        assert view.reason == reason


def test_open_circuit_says_when_it_may_be_probed() -> None:
    view = circuit_view(calls((0, True), (1, True), (2, True)), T0 + timedelta(seconds=5), S)
    assert view.retry_at == T0 + timedelta(seconds=32) and not view.allows_calls


def test_disabled_breaker_never_opens() -> None:
    history = calls(*[(i, True) for i in range(20)])
    off = BreakerSettings(enabled=False)
    assert circuit_view(history, T0 + timedelta(seconds=21), off).state == CircuitState.CLOSED


class FixedView(CircuitBreakers):
    def __init__(self, view: CircuitView, **kwargs: object) -> None:
        super().__init__({}, **kwargs)  # type: ignore[arg-type]
        self.fixed = view

    def view(self, session: object, provider: str, now: datetime | None = None) -> CircuitView:  # type: ignore[override]
        return self.fixed


def test_half_open_lets_exactly_one_probe_through_across_threads() -> None:
    breakers = FixedView(CircuitView(CircuitState.HALF_OPEN))
    permits = []
    lock = threading.Lock()
    start = threading.Barrier(16)

    def take() -> None:
        start.wait()
        _view, permit = breakers.acquire(None, "paypro_kr")  # type: ignore[arg-type]
        if permit is not None:
            with lock:
                permits.append(permit)

    threads = [threading.Thread(target=take) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(permits) == 1 and permits[0].probe
    assert breakers.acquire(None, "paypro_kr")[1] is None  # type: ignore[arg-type]
    permits[0].release()
    assert breakers.acquire(None, "paypro_kr")[1] is not None  # type: ignore[arg-type]


def test_a_probe_held_too_long_is_given_to_another_thread() -> None:
    clock = [0.0]
    breakers = FixedView(
        CircuitView(CircuitState.HALF_OPEN), probe_timeout=5.0, monotonic=lambda: clock[0]
    )
    assert breakers.acquire(None, "x")[1] is not None  # type: ignore[arg-type]
    assert breakers.acquire(None, "x")[1] is None  # type: ignore[arg-type]
    clock[0] = 6.0  # its thread died without releasing it
    assert breakers.acquire(None, "x")[1] is not None  # type: ignore[arg-type]


def test_closed_and_open_need_no_probe_slot() -> None:
    closed = FixedView(CircuitView(CircuitState.CLOSED))
    assert all(closed.acquire(None, "x")[1] is not None for _ in range(5))  # type: ignore[arg-type]
    opened = FixedView(CircuitView(CircuitState.OPEN, retry_at=T0))
    assert opened.acquire(None, "x") == (CircuitView(CircuitState.OPEN, retry_at=T0), None)  # type: ignore[arg-type]


# ---------------------------------------------------------------- configuration
@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"failures": 0}, "failures"),
        ({"error_rate": 1.5}, "error_rate"),
        ({"cool_down_seconds": -1}, "cool_down_seconds"),
        ({"enabled": "yes"}, "enabled"),
        ({"colldown": 3}, "unknown key"),
        ("fast", "must be a table"),
    ],
)
def test_bad_breaker_settings_are_refused(table: object, message: str) -> None:
    with pytest.raises(BreakerConfigError, match=message):
        breaker_settings(table, BreakerSettings(), "circuit_breaker")


def test_breaker_settings_per_instance_over_the_defaults() -> None:
    base = breaker_settings({"failures": 2, "cool_down_seconds": 5}, BreakerSettings(), "cb")
    one = breaker_settings({"failures": 7}, base, "providers.x.circuit_breaker")
    assert (base.failures, base.cool_down_seconds, one.failures, one.cool_down_seconds) == (
        2,
        5.0,
        7,
        5.0,
    )


def _raw(methods: dict[str, object]) -> dict[str, object]:
    return {
        "sandbox": True,
        "providers": {
            "a": {"type": "diamondpay", "platform_id": "P", "key": "k", "api_token": "t"},
            "b": {"type": "diamondpay", "platform_id": "Q", "key": "k", "api_token": "t"},
            "mx": {
                "type": "paypro",
                "country": "MX",
                "merchant_no": "M",
                "app_secret": "s",
            },
        },
        "methods": methods,
    }


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"routes": []}, "at least one route"),
        ({"routes": [{"provider": "nope"}]}, "unknown instance"),
        ({"routes": [{"provider": "a"}, {"provider": "a"}]}, "named twice"),
        ({"routes": [{"provider": "a", "weight": -1}]}, "weight"),
        ({"routes": [{"provider": "a", "weight": True}]}, "weight"),
        ({"routes": [{"provider": "a"}, {"provider": "mx", "way_code": "va"}]}, "same currency"),
        ({"routes": [{"provider": "a"}], "service_id": "SVC0016"}, "each route's table"),
    ],
)
def test_bad_routes_are_refused_at_start(table: dict[str, object], message: str, tmp_path) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        build_settings(_raw({"m": table}), tmp_path)


def test_routes_give_each_instance_the_method_with_its_own_options(tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = build_settings(
        _raw(
            {
                "bank": {
                    "routes": [
                        {"provider": "a", "service_id": "SVC0016", "weight": 2},
                        {"provider": "b", "service_id": "SVC0017"},
                    ]
                },
                "single": {"provider": "b", "service_id": "SVC0015"},
            }
        ),
        tmp_path,
    )
    bank = settings.methods["bank"]
    assert bank.provider == "a" and bank.options == {"service_id": "SVC0016"}
    assert [x.weight for x in bank.candidates()] == [2, None]
    assert [(m.code, dict(m.options)) for m in settings.providers["b"].methods] == [
        ("bank", {"service_id": "SVC0017"}),
        ("single", {"service_id": "SVC0015"}),
    ]
    single = settings.methods["single"]
    assert single.routes == () and [x.provider for x in single.candidates()] == ["b"]


# ---------------------------------------------------------------- the catalog per route
class FakeProvider:
    def __init__(self, name: str, whole_only: bool, rules: PayerRules) -> None:
        self.currency = "MXN"
        self.whole_only = whole_only
        self.rules = rules
        self.name = name

    def supports_amount(self, amount: object) -> bool:
        return not self.whole_only or amount.is_whole()  # type: ignore[attr-defined]

    def payer_rules(self, method: object) -> PayerRules:
        return self.rules


def test_amount_rules_apply_per_route() -> None:
    from checkout.domain.money import Money
    from checkout.providers.base import MethodConfig
    from checkout.services.catalog import Catalog

    whole = PayerRules(name=Need.REQUIRED, email=Need.REQUIRED, mobile_country="MX")
    cents = PayerRules(name=Need.REQUIRED, email=Need.HIDDEN, mobile_country="MX")
    method = MethodConfig(
        "spei", "pp", "SPEI", routes=(RouteConfig("pp", {}), RouteConfig("other", {}))
    )
    only_pp = MethodConfig("pp_only", "pp", "SPEI (PayPro)")
    catalog = Catalog(
        {"pp": FakeProvider("pp", True, whole), "other": FakeProvider("o", False, cents)},  # type: ignore[dict-item]
        {"spei": method, "pp_only": only_pp},
    )
    centavos, pesos = Money(15050, "MXN"), Money(15000, "MXN")
    assert [r.provider for r in catalog.routes_for(method, centavos)] == ["other"]
    assert [r.provider for r in catalog.routes_for(method, pesos)] == ["pp", "other"]
    assert [m.code for m in catalog.methods_for(centavos)] == ["spei"]  # PayPro-only is not
    # The form asks what the routes that can take this amount ask.
    assert catalog.payer_rules_for(method, centavos).email == Need.HIDDEN
    assert catalog.payer_rules_for(method, pesos).email == Need.OPTIONAL
