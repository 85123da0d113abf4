"""Typed exceptions, one per error code of the cache service's interface
control document (CACHE_001 … CACHE_006, AUTH_001, AUTH_002).

Every exception is a :class:`CacheError` with ``code`` (the ICD code),
``rpc_code`` (the Connect/gRPC status the origin answered, or the client
produced) and ``attempts`` (how many times the call was sent).
"""

from __future__ import annotations

from connectrpc.code import Code


class CacheError(Exception):
    """A failed call. ``code`` is the ICD code, ``rpc_code`` the Connect status."""

    code = "CACHE_005"

    def __init__(self, message: str, *, rpc_code: Code | None = None, attempts: int = 1) -> None:
        super().__init__(f"{self.code}: {message}")
        self.message = message
        self.rpc_code = rpc_code
        self.attempts = attempts


class KeyNotFoundError(CacheError):
    """CACHE_001. Not raised by ``get``, which answers ``None`` on a miss."""

    code = "CACHE_001"


class KeyExpiredError(CacheError):
    """CACHE_002. Not raised by ``get``, which answers ``None`` on a miss."""

    code = "CACHE_002"


class StorageFullError(CacheError):
    """CACHE_003: a value over the origin's ``MAX_VALUE_BYTES``."""

    code = "CACHE_003"


class InvalidKeyError(CacheError):
    """CACHE_004: a bad namespace, key, TTL, tag or content type, or ``encrypt`` without keys at the origin."""

    code = "CACHE_004"


class OperationTimeoutError(CacheError):
    """CACHE_005: the store is unavailable, the origin unreachable, or the deadline passed."""

    code = "CACHE_005"


class CircuitOpenError(OperationTimeoutError):
    """CACHE_005 raised by the client itself, without calling the origin: its circuit breaker is open."""


class LeaseLostError(CacheError):
    """CACHE_006 (FAILED_PRECONDITION): a ``set`` under a refresh lease that no longer holds.

    The lease expired, or a newer value was written meanwhile; nothing was written.
    """

    code = "CACHE_006"


class InvalidCredentialsError(CacheError):
    """AUTH_001: a missing, expired or badly signed token."""

    code = "AUTH_001"


class InsufficientPermissionsError(CacheError):
    """AUTH_002: the token lacks the scope or the namespace."""

    code = "AUTH_002"


_by_code: dict[str, type[CacheError]] = {
    cls.code: cls
    for cls in (
        KeyNotFoundError,
        KeyExpiredError,
        StorageFullError,
        InvalidKeyError,
        OperationTimeoutError,
        LeaseLostError,
        InvalidCredentialsError,
        InsufficientPermissionsError,
    )
}

_by_rpc: dict[Code, str] = {
    Code.NOT_FOUND: "CACHE_001",
    Code.RESOURCE_EXHAUSTED: "CACHE_003",
    Code.INVALID_ARGUMENT: "CACHE_004",
    Code.UNAUTHENTICATED: "AUTH_001",
    Code.PERMISSION_DENIED: "AUTH_002",
    Code.FAILED_PRECONDITION: "CACHE_006",
}


def error_for(icd_code: str | None, rpc_code: Code | None, message: str, attempts: int) -> CacheError:
    """The exception for an ICD code (the origin's ``x-cache-error-code``), else for the Connect status."""
    code = icd_code or (_by_rpc.get(rpc_code, "CACHE_005") if rpc_code is not None else "CACHE_005")
    cls = _by_code.get(code, OperationTimeoutError)
    return cls(message, rpc_code=rpc_code, attempts=attempts)
