"""Strata cache client for Python: ``CacheClient`` (sync) and ``AsyncCacheClient`` (asyncio)."""

from ._gen.strata.cache.v1.cache_pb import CacheSource
from ._policy import BreakerConfig, RetryConfig
from .client import AsyncCacheClient, CacheClient, Entry, GetManyResult, GetOrSetResult, ReadResult, SetResult
from .errors import (
    CacheError,
    CircuitOpenError,
    InsufficientPermissionsError,
    InvalidCredentialsError,
    InvalidKeyError,
    KeyExpiredError,
    KeyNotFoundError,
    LeaseLostError,
    OperationTimeoutError,
    StorageFullError,
)

__all__ = [
    "AsyncCacheClient",
    "BreakerConfig",
    "CacheClient",
    "CacheError",
    "CacheSource",
    "CircuitOpenError",
    "Entry",
    "GetManyResult",
    "GetOrSetResult",
    "InsufficientPermissionsError",
    "InvalidCredentialsError",
    "InvalidKeyError",
    "KeyExpiredError",
    "KeyNotFoundError",
    "LeaseLostError",
    "OperationTimeoutError",
    "ReadResult",
    "RetryConfig",
    "SetResult",
    "StorageFullError",
]
