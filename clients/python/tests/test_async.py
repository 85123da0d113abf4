"""The asyncio client on the same origin: every call, auth, errors, retry and token provider."""

from __future__ import annotations

import asyncio

import pytest
from conftest import arm, connect

from strata_cache import (
    AsyncCacheClient,
    InsufficientPermissionsError,
    InvalidCredentialsError,
    InvalidKeyError,
    OperationTimeoutError,
    StorageFullError,
)

def client(env: dict[str, str], **kwargs) -> AsyncCacheClient:
    return connect(AsyncCacheClient, env, **kwargs)


def test_every_call_async(env, key):
    async def run() -> None:
        async def provider() -> str:
            return env["STRATA_TOKEN"]

        async with client(env, token=provider) as c:
            assert await c.get(key) is None
            written = await c.set(key, b"\x00\xffasync", ttl=60, tags=["py-async"])
            entry = await c.get(key)
            assert entry is not None and entry.value == b"\x00\xffasync" and entry.version == written.version
            a, b = f"{key}:a", f"{key}:b"
            assert await c.set_many({a: b"A", b: b"B"}) == 2
            many = await c.get_many([a, b, f"{key}:absent"])
            assert sorted(many.values) == [a, b] and many.missing_keys == (f"{key}:absent",)
            assert await c.delete(key) is True
            assert await c.purge(keys=[a, b]) == 2
            assert (await c.health()).healthy is True

    asyncio.run(run())


def test_errors_async(env, key):
    async def run() -> None:
        async with client(env, token=None) as c:
            with pytest.raises(InvalidCredentialsError):
                await c.get(key)
        async with client(env, service_id=env["STRATA_OTHER_NAMESPACE"]) as c:
            with pytest.raises(InsufficientPermissionsError):
                await c.get(key)
        async with client(env) as c:
            with pytest.raises(InvalidKeyError):
                await c.get("bad\x00key")
            with pytest.raises(StorageFullError):
                await c.set(key, bytes(int(env["STRATA_MAX_VALUE_BYTES"]) + 1))
        async with client(env, base_url=env["STRATA_DOWN_URL"]) as c:
            with pytest.raises(OperationTimeoutError) as down:
                await c.get(key)
            assert down.value.attempts == 4

    asyncio.run(run())


def test_retry_after_503_async(env, key):
    async def run() -> None:
        async with client(env) as direct:
            await direct.set(key, b"after-503")
        async with client(env, base_url=env["STRATA_FLAKY_URL"]) as c:
            arm(env, 1)
            entry = await c.get(key)
            assert entry is not None and entry.value == b"after-503"

    asyncio.run(run())


def test_get_or_set_async_loads_once(env, key):
    loads = []

    async def loader() -> bytes:
        loads.append(1)
        await asyncio.sleep(0.2)
        return b"computed"

    async def run() -> list:
        async with client(env) as c:
            return await asyncio.gather(*(c.get_or_set(key, loader, ttl=60) for _ in range(10)))

    results = asyncio.run(run())
    assert len(loads) == 1
    assert [r.value for r in results] == [b"computed"] * 10
    assert sum(r.loaded for r in results) == 1
