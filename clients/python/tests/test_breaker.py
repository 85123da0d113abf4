"""The breaker with the ICD's defaults (0.5, 60 s, 20 calls), on a clock the test moves."""

from __future__ import annotations

import pytest

from strata_cache import _policy
from strata_cache._policy import CLOSED, HALF_OPEN, OPEN, Breaker, BreakerConfig


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [1000.0]
    monkeypatch.setattr(_policy.time, "monotonic", lambda: now[0])
    return now


def test_defaults(clock):
    b = Breaker(BreakerConfig())
    for _ in range(19):
        b.record(True)
    assert b.state == CLOSED, "opened below the minimum of 20 calls"
    b.record(True)
    assert b.state == OPEN and not b.allow()

    b = Breaker(BreakerConfig())
    for _ in range(10):
        b.record(False)
        b.record(True)
    assert b.state == OPEN, "a failure ratio of exactly 0.5 must open"

    b = Breaker(BreakerConfig())
    for _ in range(11):
        b.record(False)
    for _ in range(9):
        b.record(True)
    assert b.state == CLOSED, "0.45 must not open"

    b = Breaker(BreakerConfig())
    for _ in range(19):
        b.record(True)
    clock[0] += 61
    b.record(True)
    assert b.state == CLOSED, "calls older than the window still counted"
    for _ in range(5):
        b.record(True, counted=False)
    assert b.state == CLOSED, "client errors counted"


def test_half_open(clock):
    b = Breaker(BreakerConfig())
    for _ in range(20):
        b.record(True)
    clock[0] += 29
    assert not b.allow()
    clock[0] += 1
    assert b.state == HALF_OPEN and b.allow()
    assert not b.allow(), "a second call during the half-open trial"
    b.record(True)
    assert b.state == OPEN
    clock[0] += 30
    assert b.allow()
    b.record(False)
    assert b.state == CLOSED and b.allow()
