"""Sync and async clients of Strata's cache API (``strata.cache.v1.CacheService``),
over the Connect protocol (HTTP/1.1, binary protobuf) on the origin's port.

Over the generated clients in ``_gen`` they add: a bearer token (fixed, or a
provider called before every attempt, for rotation), the encrypt option, a
per-attempt timeout (default 5 s), retries of idempotent calls (get,
get_many, delete, purge, health) after UNAVAILABLE with exponential back-off
and full jitter (default 3), a client-side circuit breaker (threshold 0.5,
window 60 s, at least 20 calls), and typed exceptions (``strata_cache.errors``).
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
from .errors import CircuitOpenError, InvalidCredentialsError, error_for

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
    #: A local copy answered that Redis may have moved past.
    stale: bool = False


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
                     tags: Iterable[str], encrypt: bool, compress: bool | None) -> SetRequest:
        extra = {} if compress is None else {"compress": compress}
        return SetRequest(namespace=ns, key=key, value=bytes(value), ttl_seconds=ttl or 0,
                          content_type=content_type or "", tags=list(tags), encrypt=encrypt, **extra)

    @staticmethod
    def _batch_set_request(ns: str, entries: Mapping[str, bytes], ttl: int | None, content_type: str | None,
                           compress: bool | None) -> BatchSetRequest:
        extra = {} if compress is None else {"compress": compress}
        return BatchSetRequest(namespace=ns, entries={k: bytes(v) for k, v in entries.items()},
                               ttl_seconds=ttl or 0, content_type=content_type or "", **extra)

    @staticmethod
    def _entry(res: Any) -> Entry | None:
        if not res.found:
            return None
        return Entry(res.value, res.content_type, res.version, res.expires_at_ms, tuple(res.tags), res.source, res.stale)

    @staticmethod
    def _many(res: Any) -> GetManyResult:
        values = {}
        for k, v in res.values.items():
            m = res.entries.get(k)
            values[k] = Entry(v, m.content_type if m else "", m.version if m else 0, m.expires_at_ms if m else 0,
                              tuple(m.tags) if m else (), res.source)
        return GetManyResult(values, tuple(res.missing_keys))

    @staticmethod
    def _purge(ns: str, keys: Iterable[str], tags: Iterable[str], prefix: str | None) -> PurgeRequest:
        if prefix is None:
            return PurgeRequest(namespace=ns, keys=list(keys), tags=list(tags))
        return PurgeRequest(namespace=ns, keys=list(keys), tags=list(tags), prefix=prefix)


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

    def get(self, key: str) -> Entry | None:
        """The entry, or ``None`` on a miss. Retried."""
        req = GetRequest(namespace=self.namespace, key=key)
        return self._entry(self._call(True, lambda h: self.rpc.get(req, headers=h)))

    def set(self, key: str, value: bytes, ttl: int | None = None, *, content_type: str | None = None,
            tags: Iterable[str] = (), encrypt: bool | None = None,
            compress: bool | None = None) -> SetResult:
        """Writes one value (``ttl`` in seconds; the origin's default when ``None``). Not retried.

        ``compress``: store it zstd-compressed when that saves space (``True``) or never (``False``);
        ``None`` compresses values above the origin's ``COMPRESS_MIN_BYTES`` (default 1024 bytes).
        Ignored for an encrypted write. Reads always return the original bytes.
        """
        req = self._set_request(self.namespace, key, value, ttl, content_type, tags,
                                self._encrypt if encrypt is None else encrypt, compress)
        res = self._call(False, lambda h: self.rpc.set(req, headers=h))
        return SetResult(res.version, res.expires_at_ms)

    def delete(self, key: str) -> bool:
        """Deletes one key and purges it at every edge; ``False`` when it was absent. Retried."""
        req = DeleteRequest(namespace=self.namespace, key=key)
        return self._call(True, lambda h: self.rpc.delete(req, headers=h)).deleted

    def get_many(self, keys: Iterable[str]) -> GetManyResult:
        """Reads up to 1000 keys. Retried."""
        req = BatchGetRequest(namespace=self.namespace, keys=list(keys))
        return self._many(self._call(True, lambda h: self.rpc.batch_get(req, headers=h)))

    def set_many(self, entries: Mapping[str, bytes], ttl: int | None = None, *,
                 content_type: str | None = None, compress: bool | None = None) -> int:
        """Writes up to 1000 values with one TTL (seconds); returns how many were stored. Not retried.

        ``compress`` as for :meth:`set`, for every entry.
        """
        req = self._batch_set_request(self.namespace, entries, ttl, content_type, compress)
        return self._call(False, lambda h: self.rpc.batch_set(req, headers=h)).stored_count

    def purge(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), prefix: str | None = None) -> int:
        """Purges by keys, tags or prefix at the origin and every edge; returns how many the origin removed. Retried."""
        req = self._purge(self.namespace, keys, tags, prefix)
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

    async def get(self, key: str) -> Entry | None:
        """The entry, or ``None`` on a miss. Retried."""
        req = GetRequest(namespace=self.namespace, key=key)
        return self._entry(await self._call(True, lambda h: self.rpc.get(req, headers=h)))

    async def set(self, key: str, value: bytes, ttl: int | None = None, *, content_type: str | None = None,
                  tags: Iterable[str] = (), encrypt: bool | None = None,
                  compress: bool | None = None) -> SetResult:
        """Writes one value (``ttl`` in seconds; the origin's default when ``None``). Not retried.

        ``compress``: store it zstd-compressed when that saves space (``True``) or never (``False``);
        ``None`` compresses values above the origin's ``COMPRESS_MIN_BYTES`` (default 1024 bytes).
        Ignored for an encrypted write. Reads always return the original bytes.
        """
        req = self._set_request(self.namespace, key, value, ttl, content_type, tags,
                                self._encrypt if encrypt is None else encrypt, compress)
        res = await self._call(False, lambda h: self.rpc.set(req, headers=h))
        return SetResult(res.version, res.expires_at_ms)

    async def delete(self, key: str) -> bool:
        """Deletes one key and purges it at every edge; ``False`` when it was absent. Retried."""
        req = DeleteRequest(namespace=self.namespace, key=key)
        return (await self._call(True, lambda h: self.rpc.delete(req, headers=h))).deleted

    async def get_many(self, keys: Iterable[str]) -> GetManyResult:
        """Reads up to 1000 keys. Retried."""
        req = BatchGetRequest(namespace=self.namespace, keys=list(keys))
        return self._many(await self._call(True, lambda h: self.rpc.batch_get(req, headers=h)))

    async def set_many(self, entries: Mapping[str, bytes], ttl: int | None = None, *,
                       content_type: str | None = None, compress: bool | None = None) -> int:
        """Writes up to 1000 values with one TTL (seconds); returns how many were stored. Not retried.

        ``compress`` as for :meth:`set`, for every entry.
        """
        req = self._batch_set_request(self.namespace, entries, ttl, content_type, compress)
        return (await self._call(False, lambda h: self.rpc.batch_set(req, headers=h))).stored_count

    async def purge(self, *, keys: Iterable[str] = (), tags: Iterable[str] = (), prefix: str | None = None) -> int:
        """Purges by keys, tags or prefix at the origin and every edge; returns how many the origin removed. Retried."""
        req = self._purge(self.namespace, keys, tags, prefix)
        return (await self._call(True, lambda h: self.rpc.purge(req, headers=h))).purged_count

    async def health(self) -> HealthResponse:
        """Store reachability and the origin's breaker state. Retried."""
        return await self._call(True, lambda h: self.rpc.health(HealthRequest(), headers=h))
