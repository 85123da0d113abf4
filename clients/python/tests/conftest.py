"""The suite runs against a real origin that the repository's test harness
starts (test/integration/clients-python-go.test.ts) and describes in the
environment. A missing variable fails the run: nothing is skipped."""

from __future__ import annotations

import os
import time
import urllib.request

from typing import Any, TypeVar

import pytest

from strata_cache import RetryConfig

T = TypeVar("T")

NAMES = (
    "STRATA_ORIGIN_URL",
    "STRATA_NAMESPACE",
    "STRATA_TOKEN",
    "STRATA_OTHER_NAMESPACE",
    "STRATA_FORGED_TOKEN",
    "STRATA_FLAKY_URL",
    "STRATA_DOWN_URL",
    "STRATA_CLOSED_URL",
    "STRATA_MAX_VALUE_BYTES",
)


def pytest_configure(config: pytest.Config) -> None:
    missing = [n for n in NAMES if not os.environ.get(n)]
    if missing:
        raise pytest.UsageError(
            f"missing {', '.join(missing)}: run this suite through "
            "`npx vitest run test/integration/clients-python-go.test.ts`"
        )


@pytest.fixture(scope="session")
def env() -> dict[str, str]:
    return {n: os.environ[n] for n in NAMES}


@pytest.fixture
def key(request: pytest.FixtureRequest) -> str:
    return f"py:{request.node.name}:{time.time_ns()}"


FAST_RETRY = {"retries": 3, "base_backoff_s": 0.01, "max_backoff_s": 0.05}


def connect(cls: type[T], env: dict[str, str], **kwargs: Any) -> T:
    """A client of ``cls`` on the test origin with the test token and fast retries, unless overridden."""
    kwargs.setdefault("token", env["STRATA_TOKEN"])
    kwargs.setdefault("retry", RetryConfig(**FAST_RETRY))
    return cls(kwargs.pop("base_url", env["STRATA_ORIGIN_URL"]), kwargs.pop("service_id", env["STRATA_NAMESPACE"]), **kwargs)


def payload(lang: str) -> bytes:
    """The value each language writes in the cross-language check: not valid UTF-8."""
    return lang.encode() + b"\x00\xff\xfe\xc3\x28" + bytes(range(256))


def control(env: dict[str, str], path: str) -> None:
    """Posts to the flaky proxy's control path (``/__fail?count=N``, ``/__delay?ms=N``)."""
    req = urllib.request.Request(f"{env['STRATA_FLAKY_URL']}{path}", method="POST", data=b"")
    with urllib.request.urlopen(req) as res:
        assert res.status == 204


def arm(env: dict[str, str], count: int) -> None:
    """Makes the flaky proxy answer 503 to its next ``count`` requests."""
    control(env, f"/__fail?count={count}")
