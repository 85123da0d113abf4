"""Sync and async clients of Strata's cache API (``strata.cache.v1.CacheService``),
over the Connect protocol (HTTP/1.1, binary protobuf) on the origin's port.

Over the generated clients in ``_gen`` they add: a bearer token (fixed, or a
provider called before every attempt, for rotation), the encrypt option, a
per-attempt timeout (default 5 s), retries of idempotent calls (get,
get_many, delete, purge, health) after UNAVAILABLE with exponential back-off
and full jitter (default 3), a client-side circuit breaker (threshold 0.5,
window 60 s, at least 20 calls), and typed exceptions (``strata_cache.errors``).

The entry lifecycle (grace windows, refresh leases, soft purge, strong reads)
is the origin's: ``get_or_set`` loads a missing key in one caller across all
clients, under the key's refresh lease (memcache leases, NSDI 2013).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from connectrpc.code import Code
from connectrpc.errors import ConnectError
from connectrpc.client import ResponseMetadata

from ._gen.strata.cache.v1.cache_connect import CacheServiceClient, CacheServiceClientSync
from ._gen.strata.cache.v1.cache_pb import (
    BatchGetRequest,
    BatchSetRequest,
    CacheSource,
    DeleteRequest,
    GetRequest,
    HealthRequest,
    HealthResponse,
    PurgeRequest,
    SetRequest,
)
from ._policy import SERVER_SIDE, Breaker, BreakerConfig, RetryConfig
from .errors import CircuitOpenError, InvalidCredentialsError, LeaseLostError, error_for

T = TypeVar("T")

#: A bearer token, or a callable returning one (sync client) / an awaitable of one (async client).
TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]] | None


@dataclass(frozen=True)
class Entry:
    """A stored value with its metadata."""

    value: bytes
    content_type: str
    #: Monotonic per key (the REST ETag).
    version: int
    #: Unix milliseconds at which the entry expires.
    expires_at_ms: int
    tags: tuple[str, ...]
    #: Which tier answered.
    source: CacheSource | None
    #: A stale answer: past its TTL within ``stale-while-revalidate``, soft-purged, or a local copy Redis may have moved past.
    stale: bool = False
    #: ``revalidating`` or ``soft-purge`` when past its fresh lifetime; empty otherwise.
    stale_reason: str = ""
    #: Seconds since the entry was written (``Age``).
    age_seconds: int = 0
    #: Grace windows the writer gave, seconds (RFC 5861); 0 = none.
    stale_while_revalidate_seconds: int = 0
    stale_if_error_seconds: int = 0


@dataclass(frozen=True)
class ReadResult:
    """A read that may hand this caller the key's refresh lease (``entry`` is ``None`` on a miss)."""

    entry: Entry | None
    #: The refresh lease when this caller was chosen to refresh the key; pass it to ``set(lease=...)``.
    lease: str | None


@dataclass(frozen=True)
class GetOrSetResult:
    value: bytes
    #: True when this caller's loader produced the value.
    loaded: bool


@dataclass(frozen=True)
class SetResult:
    version: int
    expires_at_ms: int


@dataclass(frozen=True)
class GetManyResult:
    values: dict[str, Entry] = field(default_factory=dict)
    missing_keys: tuple[str, ...] = ()


class _Base:
    def __init__(
        self,
        base_url: str,
        service_id: str,
        *,
        token: TokenSource = None,
        options: Mapping[str, Any] | None = None,
        timeout_s: float | None = 5.0,
        retry: RetryConfig | None = None,
        breaker: BreakerConfig | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.namespace = service_id
        self._token = token
        unknown = set(options or {}) - {"encryption"}
        if unknown:
            raise ValueError(f"unknown option(s) {sorted(unknown)}: the only option is 'encryption'")
        self._encrypt = bool((options or {}).get("encryption", False))
        self._timeout_ms = None if timeout_s is None else int(timeout_s * 1000)
        self._retry = retry or RetryConfig()
        self._breaker = Breaker(breaker or BreakerConfig())

    @property
    def breaker_state(self) -> str:
        """``closed``, ``open`` or ``half-open``."""
        return self._breaker.state

    def _headers(self, token: str | None) -> dict[str, str]:
        return {"authorization": f"Bearer {token}"} if token else {}

    def _retries(self, idempotent: bool) -> int:
        return self._retry.retries if idempotent else 0

    def _admit(self, attempt: int) -> None:
        """Raises CircuitOpenError while the breaker refuses calls."""
        if not self._breaker.allow():
            raise CircuitOpenError("client circuit breaker is open", rpc_code=Code.UNAVAILABLE, attempts=attempt - 1)

    def _backoff_or_raise(self, error: ConnectError, meta: ResponseMetadata, attempt: int, idempotent: bool) -> float:
        """Records a failed attempt; the back-off (seconds) before the next one, or the typed exception."""
        server_side = error.code in SERVER_SIDE
        self._breaker.record(server_side, server_side)
        if error.code != Code.UNAVAILABLE or attempt > self._retries(idempotent):
            icd = meta.headers.get("x-cache-error-code") or meta.trailers.get("x-cache-error-code")
            raise error_for(icd, error.code, error.message, attempt) from error
        return self._retry.backoff(attempt)

    @staticmethod
    def _set_request(ns: str, key: str, value: bytes, ttl: int | None, content_type: str | None,
                     tags: Iterable[str], encrypt: bool, compress: bool | None,
                     grace: tuple[int, int] = (0, 0), lease: str | None = None) -> SetRequest:
        extra = {} if compress is None else {"compress": compress}
        return SetRequest(namespace=ns, key=key, value=bytes(value), ttl_seconds=ttl or 0,
                          content_type=content_type or "", tags=list(tags), encrypt=encrypt,
                          stale_while_revalidate_seconds=grace[0], stale_if_error_seconds=grace[1],
                          lease=lease or "", **extra)

    @staticmethod
    def _batch_set_request(ns: str, entries: Mapping[str, bytes], ttl: int | None, content_type: str | None,
                           compress: bool | None, grace: tuple[int, int] = (0, 0)) -> BatchSetRequest:
        extra = {} if compress is None else {"compress": compress}
        return BatchSetRequest(namespace=ns, entries={k: bytes(v) for k, v in entries.items()},
                               ttl_seconds=ttl or 0, content_type=content_type or "",
                               stale_while_revalidate_seconds=grace[0], stale_if_error_seconds=grace[1], **extra)

    @staticmethod
    def _get_request(ns: str, key: str, strong: bool, lease: bool, wait_s: int) -> GetRequest:
        return GetRequest(namespace=ns, key=key, strong=strong, lease=lease or wait_s > 0, wait_seconds=wait_s)

    def _wait_timeout_ms(self, wait_s: int) -> int | None:
        """A read that waits (``wait_s`` seconds) needs a deadline beyond its wait."""
        if self._timeout_ms is None or wait_s <= 0:
            return self._timeout_ms
        return max(self._timeout_ms, (wait_s + 5) * 1000)

    @staticmethod
    def _entry(res: Any) -> Entry | None:
        if not res.found:
            return None
        return Entry(res.value, res.content_type, res.version, res.expires_at_ms, tuple(res.tags), res.source, res.stale,
                     res.stale_reason, res.age_seconds, res.stale_while_revalidate_seconds, res.stale_if_error_seconds)

    @classmethod
    def _read_result(cls, res: Any) -> ReadResult:
        return ReadResult(cls._entry(res), res.lease or None)

    @staticmethod
    def _many(res: Any) -> GetManyResult:
        values = {}
        for k, v in res.values.items():
            m = res.entries.get(k)
            values[k] = (Entry(v, m.content_type, m.version, m.expires_at_ms, tuple(m.tags), res.source, m.stale,
                               m.stale_reason, m.age_seconds, m.stale_while_revalidate_seconds,
                               m.stale_if_error_seconds)
                         if m else Entry(v, "", 0, 0, (), res.source))
        return GetManyResult(values, tuple(res.missing_keys))

    @staticmethod
    def _purge(ns: str, keys: Iterable[str], tags: Iterable[str], prefix: str | None, soft: bool = False) -> PurgeRequest:
        if prefix is None:
            return PurgeRequest(namespace=ns, keys=list(keys), tags=list(tags), soft=soft)
        return PurgeRequest(namespace=ns, keys=list(keys), tags=list(tags), prefix=prefix, soft=soft)


class CacheClient(_Base):
    """Synchronous client. Use as a context manager or call :meth:`close`.

    ``token`` is a string or a zero-argument callable returning one (called
    before every attempt). ``options={"encryption": True}`` encrypts every
    ``set`` at rest. ``timeout_s`` bounds each attempt (seconds, ``None`` for none).
    """

    def __init__(self, base_url: str, service_id: str, **kwargs: Any) -> None:
        super().__init__(base_url, service_id, **kwargs)
        #: The generated client, for fields this wrapper does not surface.
        self.rpc = CacheServiceClientSync(self.base_url, timeout_ms=self._timeout_ms)

    def __enter__(self) -> CacheClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.rpc.close()

    def _token_now(self, attempts: int) -> str | None:
        if self._token is None or isinstance(self._token, str):
            return self._token
        try:
            return self._token()  # type: ignore[return-value]
        except Exception as e:
            raise InvalidCredentialsError(f"token provider: {e}", attempts=attempts) from e

    def _call(self, idempotent: bool, send: Callable[[dict[str, str]], T]) -> T:
        attempt = 0
        while True:
            attempt += 1
            headers = self._headers(self._token_now(attempt))
            self._admit(attempt)
            with ResponseMetadata() as meta:
                try:
                    res = send(headers)
                except ConnectError as e:
                    time.sleep(self._backoff_or_raise(e, meta, attempt, idempotent))
                    continue
            self._breaker.record(False)
            return res

    def get(self, key: str, *, strong: bool = False) -> Entry | None:
        """The entry, or ``None`` on a miss. Retried.

        ``strong`` (REST ``Cache-Control: no-cache``): never answered from the origin's fallback tier
        (:class:`OperationTimeoutError` while the store is down) and never stale (``None`` instead).
        """
        return self.read(key, strong=strong).entry

    def read(self, key: str, *, strong: bool = False, lease: bool = False, wait_s: int = 0) -> ReadResult:
        """A read that may hand this caller the key's refresh lease (``lease=True``). Retried.

        ``wait_s``: on a miss another caller is refreshing, wait up to this many whole seconds (at most 10)
        for its write (REST ``Prefer: wait``); implies ``lease``.
        """
        req = self._get_request(self.namespace, key, strong, lease, wait_s)
        timeout = self._wait_timeout_ms(wait_s)
        return self._read_result(self._call(True, lambda h: self.rpc.get(req, headers=h, timeout_ms=timeout)))

    def set(self, key: str, value: bytes, ttl: int | None = None, *, content_type: str | None = None,
            tags: Iterable[str] = (), encrypt: bool | None = None,
            compress: bool | None = None, stale_while_revalidate: int = 0, stale_if_error: int = 0,
            lease: str | None = None) -> SetResult:
        """Writes one value (``ttl`` in seconds; the origin's default when ``None``). Not retried.

        ``compress``: store it zstd-compressed when that saves space (``True``) or never (``False``);
        ``None`` compresses values above the origin's ``COMPRESS_MIN_BYTES`` (default 1024 bytes).
        Ignored for an encrypted write. Reads always return the original bytes.
        ``stale_while_revalidate`` / ``stale_if_error``: grace after the TTL, seconds (RFC 5861).
        ``lease``: the refresh lease this write completes; :class:`LeaseLostError` (CACHE_006) when it
        no longer holds, and nothing is written.
        """
        req = self._set_request(self.namespace, key, value, ttl, content_type, tags,
                                self._encrypt if encrypt is None else encrypt, compress,
                                (stale_while_revalidate, stale_if_error), lease)
        res = self._call(False, lambda h: self.rpc.set(req, headers=h))
        return SetResult(res.version, res.expires_at_ms)

    def get_or_set(self, key: str, loader: Callable[[], bytes], ttl: int | None = None, *,
                   content_type: str | None = None, stale_while_revalidate: int = 0, stale_if_error: int = 0,
                   wait_s: int = 5, give_up_after_s: float = 30.0) -> GetOrSetResult:
        """The cached value of ``key``, or ``loader()``'s, loaded by one caller across all clients.

        Only the caller handed the key's refresh lease runs ``loader`` and writes its value under the
        lease; the others wait (``wait_s``, at most 10) for that write. A stale hit answers the stale
        value; a lease handed with it is refreshed before returning. A write whose lease was lost
        (CACHE_006) still answers the loaded value. After ``give_up_after_s`` the loader runs without
        the cache.
        """
        wait_s = min(wait_s, 10)
        deadline = time.monotonic() + give_up_after_s

        def refresh(lease: str) -> bytes:
            value = loader()
            try:
                self.set(key, value, ttl, content_type=content_type, lease=lease,
                         stale_while_revalidate=stale_while_revalidate, stale_if_error=stale_if_error)
            except LeaseLostError:
                pass
            return value

        while time.monotonic() < deadline:
            got = self.read(key, lease=True, wait_s=wait_s)
            if got.entry is not None:
                if got.lease:
                    refresh(got.lease)
                return GetOrSetResult(got.entry.value, False)
            if got.lease:
                return GetOrSetResult(refresh(got.lease), True)
        return GetOrSetResult(loader(), True)

    def delete(self, key: str) -> bool:
        """Deletes one key and purges it at every edge; ``False`` when it was absent. Retried."""
        req = DeleteRequest(namespace=self.namespace, key=key)
        return self._call(True, lambda h: self.rpc.delete(req, headers=h)).deleted

    def get_many(self, keys: Iterable[str]) -> GetManyResult:
        """Reads up to 1000 keys. Retried."""
        req = BatchGetRequest(namespace=self.namespace, keys=list(keys))
        return self._many(self._call(True, lambda h: self.rpc.batch_get(req, headers=h)))

    def set_many(self, entries: Mapping[str, bytes], ttl: int | None = None, *,
                 content_type: str | None = None, compress: bool | None = None,
                 stale_while_revalidate: int = 0, stale_if_error: int = 0) -> int:
        """Writes up to 1000 values with one TTL (seconds); returns how many were stored. Not retried.

        ``compress`` and the grace windows as for :meth:`set`, for every entry.
        """
        req = self._batch_set_request(self.namespace, entries, ttl, content_type, compress,
                                      (stale_while_revalidate, stale_if_error))
        return self._call(False, lambda h: self.rpc.batch_set(req, headers=h)).stored_count

    def purge(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), prefix: str | None = None,
              soft: bool = False) -> int:
        """Purges by keys, tags or prefix at the origin and every edge; returns how many the origin removed. Retried.

        ``soft``: mark the entries stale (served within their grace, reason ``soft-purge``) instead of removing them.
        """
        req = self._purge(self.namespace, keys, tags, prefix, soft)
        return self._call(True, lambda h: self.rpc.purge(req, headers=h)).purged_count

    def health(self) -> HealthResponse:
        """Store reachability and the origin's breaker state. Retried."""
        return self._call(True, lambda h: self.rpc.health(HealthRequest(), headers=h))


class AsyncCacheClient(_Base):
    """Asynchronous client (asyncio). Use as an async context manager or await :meth:`close`.

    ``token`` is a string, or a zero-argument callable returning a string or an
    awaitable of one (called before every attempt). Other options as :class:`CacheClient`.
    """

    def __init__(self, base_url: str, service_id: str, **kwargs: Any) -> None:
        super().__init__(base_url, service_id, **kwargs)
        #: The generated client, for fields this wrapper does not surface.
        self.rpc = CacheServiceClient(self.base_url, timeout_ms=self._timeout_ms)

    async def __aenter__(self) -> AsyncCacheClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self.rpc.close()

    async def _token_now(self, attempts: int) -> str | None:
        if self._token is None or isinstance(self._token, str):
            return self._token
        try:
            token = self._token()
            return await token if asyncio.iscoroutine(token) or isinstance(token, Awaitable) else token  # type: ignore[return-value]
        except Exception as e:
            raise InvalidCredentialsError(f"token provider: {e}", attempts=attempts) from e

    async def _call(self, idempotent: bool, send: Callable[[dict[str, str]], Awaitable[T]]) -> T:
        attempt = 0
        while True:
            attempt += 1
            headers = self._headers(await self._token_now(attempt))
            self._admit(attempt)
            with ResponseMetadata() as meta:
                try:
                    res = await send(headers)
                except ConnectError as e:
                    await asyncio.sleep(self._backoff_or_raise(e, meta, attempt, idempotent))
                    continue
            self._breaker.record(False)
            return res

    async def get(self, key: str, *, strong: bool = False) -> Entry | None:
        """The entry, or ``None`` on a miss. Retried. ``strong`` as :meth:`CacheClient.get`."""
        return (await self.read(key, strong=strong)).entry

    async def read(self, key: str, *, strong: bool = False, lease: bool = False, wait_s: int = 0) -> ReadResult:
        """As :meth:`CacheClient.read`. Retried."""
        req = self._get_request(self.namespace, key, strong, lease, wait_s)
        timeout = self._wait_timeout_ms(wait_s)
        return self._read_result(await self._call(True, lambda h: self.rpc.get(req, headers=h, timeout_ms=timeout)))

    async def set(self, key: str, value: bytes, ttl: int | None = None, *, content_type: str | None = None,
                  tags: Iterable[str] = (), encrypt: bool | None = None,
                  compress: bool | None = None, stale_while_revalidate: int = 0, stale_if_error: int = 0,
                  lease: str | None = None) -> SetResult:
        """Writes one value (``ttl`` in seconds; the origin's default when ``None``). Not retried.

        Options as :meth:`CacheClient.set`; a lost ``lease`` raises :class:`LeaseLostError` (CACHE_006).
        """
        req = self._set_request(self.namespace, key, value, ttl, content_type, tags,
                                self._encrypt if encrypt is None else encrypt, compress,
                                (stale_while_revalidate, stale_if_error), lease)
        res = await self._call(False, lambda h: self.rpc.set(req, headers=h))
        return SetResult(res.version, res.expires_at_ms)

    async def get_or_set(self, key: str, loader: Callable[[], Awaitable[bytes]], ttl: int | None = None, *,
                         content_type: str | None = None, stale_while_revalidate: int = 0, stale_if_error: int = 0,
                         wait_s: int = 5, give_up_after_s: float = 30.0) -> GetOrSetResult:
        """As :meth:`CacheClient.get_or_set`, with an async ``loader``."""
        wait_s = min(wait_s, 10)
        deadline = time.monotonic() + give_up_after_s

        async def refresh(lease: str) -> bytes:
            value = await loader()
            try:
                await self.set(key, value, ttl, content_type=content_type, lease=lease,
                               stale_while_revalidate=stale_while_revalidate, stale_if_error=stale_if_error)
            except LeaseLostError:
                pass
            return value

        while time.monotonic() < deadline:
            got = await self.read(key, lease=True, wait_s=wait_s)
            if got.entry is not None:
                if got.lease:
                    await refresh(got.lease)
                return GetOrSetResult(got.entry.value, False)
            if got.lease:
                return GetOrSetResult(await refresh(got.lease), True)
        return GetOrSetResult(await loader(), True)

    async def delete(self, key: str) -> bool:
        """Deletes one key and purges it at every edge; ``False`` when it was absent. Retried."""
        req = DeleteRequest(namespace=self.namespace, key=key)
        return (await self._call(True, lambda h: self.rpc.delete(req, headers=h))).deleted

    async def get_many(self, keys: Iterable[str]) -> GetManyResult:
        """Reads up to 1000 keys. Retried."""
        req = BatchGetRequest(namespace=self.namespace, keys=list(keys))
        return self._many(await self._call(True, lambda h: self.rpc.batch_get(req, headers=h)))

    async def set_many(self, entries: Mapping[str, bytes], ttl: int | None = None, *,
                       content_type: str | None = None, compress: bool | None = None,
                       stale_while_revalidate: int = 0, stale_if_error: int = 0) -> int:
        """Writes up to 1000 values with one TTL (seconds); returns how many were stored. Not retried.

        ``compress`` and the grace windows as for :meth:`set`, for every entry.
        """
        req = self._batch_set_request(self.namespace, entries, ttl, content_type, compress,
                                      (stale_while_revalidate, stale_if_error))
        return (await self._call(False, lambda h: self.rpc.batch_set(req, headers=h))).stored_count

    async def purge(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), prefix: str | None = None,
                    soft: bool = False) -> int:
        """Purges by keys, tags or prefix at the origin and every edge; returns how many the origin removed. Retried.

        ``soft`` as :meth:`CacheClient.purge`.
        """
        req = self._purge(self.namespace, keys, tags, prefix, soft)
        return (await self._call(True, lambda h: self.rpc.purge(req, headers=h))).purged_count

    async def health(self) -> HealthResponse:
        """Store reachability and the origin's breaker state. Retried."""
        return await self._call(True, lambda h: self.rpc.health(HealthRequest(), headers=h))
