"""The suite runs against a real origin that the repository's test harness
starts (test/integration/clients-python-go.test.ts) and describes in the
environment. A missing variable fails the run: nothing is skipped."""

from __future__ import annotations

import os
import time
import urllib.request

import pytest

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
