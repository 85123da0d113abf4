from __future__ import annotations

import os
import threading
import time

import pytest
from connectrpc.code import Code
from conftest import arm, connect, control, payload

from strata_cache import (
    BreakerConfig,
    CacheClient,
    CacheSource,
    CircuitOpenError,
    InsufficientPermissionsError,
    InvalidCredentialsError,
    InvalidKeyError,
    LeaseLostError,
    OperationTimeoutError,
    RetryConfig,
    StorageFullError,
)

def client(env: dict[str, str], **kwargs) -> CacheClient:
    return connect(CacheClient, env, **kwargs)


def test_every_call(env, key):
    with client(env) as c:
        assert c.get(key) is None
        written = c.set(key, b"hello", ttl=3600, content_type="text/plain", tags=["py-tag"])
        assert written.version > 0 and written.expires_at_ms > time.time() * 1000
        entry = c.get(key)
        assert entry is not None
        assert (entry.value, entry.content_type, entry.version, entry.tags) == (b"hello", "text/plain", written.version, ("py-tag",))
        assert entry.source in (CacheSource.REDIS, CacheSource.MEMORY)
        assert c.delete(key) is True
        assert c.delete(key) is False
        a, b, absent = f"{key}:a", f"{key}:b", f"{key}:absent"
        assert c.set_many({a: b"A", b: b"B"}, ttl=600) == 2
        many = c.get_many([a, b, absent])
        assert {k: e.value for k, e in many.values.items()} == {a: b"A", b: b"B"}
        assert many.values[a].version > 0
        assert many.missing_keys == (absent,)
        c.set(f"{key}:t", b"t", tags=["py-purge"])
        assert c.purge(tags=["py-purge"]) >= 1
        assert c.get(f"{key}:t") is None
        assert c.purge(prefix=f"{key}:") == 2
        assert c.health().healthy is True


def test_encrypt_and_token_provider(env, key):
    calls = []

    def provider() -> str:
        calls.append(1)
        return env["STRATA_TOKEN"]

    with client(env, token=provider, options={"encryption": True}) as c:
        c.set(key, payload("enc"))
        entry = c.get(key)
        assert entry is not None and entry.value == payload("enc")
    assert len(calls) == 2


def test_auth_errors(env, key):
    with client(env, token=None) as c, pytest.raises(InvalidCredentialsError) as missing:
        c.get(key)
    assert missing.value.code == "AUTH_001" and missing.value.attempts == 1
    with client(env, token=env["STRATA_FORGED_TOKEN"]) as c, pytest.raises(InvalidCredentialsError):
        c.get(key)
    with client(env, service_id=env["STRATA_OTHER_NAMESPACE"]) as c, pytest.raises(InsufficientPermissionsError) as denied:
        c.get(key)
    assert denied.value.code == "AUTH_002"


def test_error_codes(env, key):
    with client(env) as c:
        with pytest.raises(InvalidKeyError) as bad:
            c.get("bad\x00key")
        assert bad.value.code == "CACHE_004"
        with pytest.raises(StorageFullError) as big:
            c.set(key, bytes(int(env["STRATA_MAX_VALUE_BYTES"]) + 1))
        assert big.value.code == "CACHE_003"
    with client(env, base_url=env["STRATA_DOWN_URL"]) as down:
        with pytest.raises(OperationTimeoutError) as unavailable:
            down.get(key)
        assert unavailable.value.code == "CACHE_005" and unavailable.value.attempts == 4


def test_timeout_and_refused_connection(env, key):
    control(env, "/__delay?ms=2000")
    with client(env, base_url=env["STRATA_FLAKY_URL"], timeout_s=0.2) as slow, pytest.raises(OperationTimeoutError) as late:
        slow.get(key)
    assert (late.value.rpc_code, late.value.attempts) == (Code.DEADLINE_EXCEEDED, 1)
    with client(env, base_url=env["STRATA_CLOSED_URL"]) as c, pytest.raises(OperationTimeoutError) as refused:
        c.get(key)
    assert (refused.value.rpc_code, refused.value.attempts) == (Code.UNAVAILABLE, 4)


def test_retry_after_503(env, key):
    with client(env) as direct:
        direct.set(key, b"after-503")
    with client(env, base_url=env["STRATA_FLAKY_URL"]) as c:
        arm(env, 1)
        entry = c.get(key)
        assert entry is not None and entry.value == b"after-503"
        arm(env, 1)
        with pytest.raises(OperationTimeoutError) as write:
            c.set(key, b"x")
        assert write.value.attempts == 1
    arm(env, 0)


def test_breaker_opens_and_half_opens(env, key):
    breaker = BreakerConfig(threshold=0.5, window_s=60, min_requests=4, half_open_after_s=0.3)
    with client(env, base_url=env["STRATA_FLAKY_URL"], retry=RetryConfig(retries=0), breaker=breaker) as c:
        arm(env, 1000)
        try:
            for _ in range(4):
                with pytest.raises(OperationTimeoutError) as failed:
                    c.get(key)
                assert not isinstance(failed.value, CircuitOpenError)
            assert c.breaker_state == "open"
            with pytest.raises(CircuitOpenError):
                c.get(key)
        finally:
            arm(env, 0)
        deadline = time.monotonic() + 10
        while c.breaker_state != "half-open":
            assert time.monotonic() < deadline, "breaker never half-opened"
            time.sleep(0.02)
        assert c.get(key) is None
        assert c.breaker_state == "closed"


def test_cross_language(env):
    write, read = os.environ.get("STRATA_XLANG_WRITE", ""), os.environ.get("STRATA_XLANG_READ", "")
    assert write or read, "set STRATA_XLANG_WRITE and/or STRATA_XLANG_READ"
    with client(env) as c:
        if write:
            c.set(f"xlang:{write}", payload(write), content_type="application/octet-stream")
        for lang in filter(None, read.split(",")):
            entry = c.get(f"xlang:{lang}")
            assert entry is not None and entry.value == payload(lang), f"value written by {lang}"


def test_compress_option(env):
    """Writes a compressible value with compress=True and False (set and set_many) under fixed keys;
    each reads back as written, and the harness checks in the store that it was kept as asked."""
    value = b"strata compresses this " * 150
    with client(env) as c:
        c.set("compress:py:on", value, compress=True)
        c.set("compress:py:off", value, compress=False)
        assert c.set_many({"compress:py:many": value}, compress=True) == 1
        for k in ("compress:py:on", "compress:py:off", "compress:py:many"):
            entry = c.get(k)
            assert entry is not None and entry.value == value


def test_entry_lifecycle(env, key):
    with client(env) as c:
        c.set(key, b"v1", ttl=300, stale_while_revalidate=300, stale_if_error=600)
        entry = c.get(key)
        assert entry is not None
        assert (entry.stale, entry.stale_reason, entry.stale_while_revalidate_seconds, entry.stale_if_error_seconds) == (
            False, "", 300, 600)
        assert c.purge(keys=[key], soft=True) == 1
        soft = c.get(key)
        assert soft is not None and soft.value == b"v1" and soft.stale and soft.stale_reason == "soft-purge"
        batched = c.get_many([key]).values[key]
        assert (batched.stale, batched.stale_reason, batched.stale_while_revalidate_seconds,
                batched.stale_if_error_seconds) == (True, "soft-purge", 300, 600)
        assert c.get(key, strong=True) is None
        first = c.read(key, lease=True)
        assert first.entry is not None and first.lease
        assert c.read(key, lease=True).lease is None
        c.set(key, b"v2", ttl=300, lease=first.lease)
        with pytest.raises(LeaseLostError) as lost:
            c.set(key, b"late", lease=first.lease)
        assert lost.value.code == "CACHE_006" and lost.value.rpc_code == Code.FAILED_PRECONDITION
        fresh = c.get(key)
        assert fresh is not None and fresh.value == b"v2" and not fresh.stale


def test_get_or_set_loads_once(env, key):

    loads = []
    lock = threading.Lock()

    def loader() -> bytes:
        with lock:
            loads.append(1)
        time.sleep(0.2)
        return b"computed"

    results = []

    def caller() -> None:
        with client(env) as c:
            results.append(c.get_or_set(key, loader, ttl=60))

    threads = [threading.Thread(target=caller) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(loads) == 1
    assert [r.value for r in results] == [b"computed"] * 10
    assert sum(r.loaded for r in results) == 1
