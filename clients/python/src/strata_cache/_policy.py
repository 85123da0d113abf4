"""Retry back-off and the client-side circuit breaker, shared by the sync and async clients."""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from dataclasses import dataclass

from connectrpc.code import Code

CLOSED = "closed"
OPEN = "open"
HALF_OPEN = "half-open"

#: Failures that say the origin (or the path to it) is unwell; client errors are not counted.
SERVER_SIDE = frozenset({Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.INTERNAL, Code.UNKNOWN, Code.ABORTED})


@dataclass(frozen=True)
class BreakerConfig:
    """Opens when, over the last ``window_s`` seconds, at least ``min_requests``
    calls were made and the share that failed server-side reached
    ``threshold``; stays open ``half_open_after_s`` seconds, then lets one
    trial call through (half-open), which closes it on success or reopens it.
    Client errors (CACHE_003, CACHE_004, AUTH_*) are not counted; in
    half-open they close the breaker, since the origin answered."""

    threshold: float = 0.5
    window_s: float = 60.0
    min_requests: int = 20
    half_open_after_s: float = 30.0
    enabled: bool = True


@dataclass(frozen=True)
class RetryConfig:
    """Retries of idempotent calls after UNAVAILABLE: attempt ``n`` (from 1)
    waits a uniformly random time in ``[0, min(max_backoff_s, base_backoff_s · 2ⁿ⁻¹)]``
    (exponential back-off with full jitter)."""

    retries: int = 3
    base_backoff_s: float = 0.1
    max_backoff_s: float = 2.0

    def backoff(self, attempt: int) -> float:
        return random.uniform(0, min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1)))


class Breaker:
    """Thread-safe sliding-window breaker (see :class:`BreakerConfig`)."""

    def __init__(self, config: BreakerConfig) -> None:
        self._config = config
        self._lock = threading.Lock()
        self._state = CLOSED
        self._opened_at = 0.0
        self._trial = False
        self._calls: deque[tuple[float, bool]] = deque()

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and time.monotonic() - self._opened_at >= self._config.half_open_after_s:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        if not self._config.enabled:
            return True
        with self._lock:
            if self._state == OPEN:
                if time.monotonic() - self._opened_at < self._config.half_open_after_s:
                    return False
                self._state = HALF_OPEN
                self._trial = True
                return True
            if self._state == HALF_OPEN:
                if self._trial:
                    return False
                self._trial = True
            return True

    def record(self, failed: bool, counted: bool = True) -> None:
        """Notes an outcome; ``counted=False`` (a client error) only ends a half-open trial."""
        if not self._config.enabled:
            return
        with self._lock:
            now = time.monotonic()
            if self._state == HALF_OPEN:
                self._trial = False
                if failed:
                    self._state, self._opened_at = OPEN, now
                else:
                    self._state = CLOSED
                    self._calls.clear()
                return
            if not counted:
                return
            while self._calls and now - self._calls[0][0] > self._config.window_s:
                self._calls.popleft()
            self._calls.append((now, failed))
            if len(self._calls) < self._config.min_requests:
                return
            failures = sum(1 for _, f in self._calls if f)
            if failures / len(self._calls) >= self._config.threshold:
                self._state, self._opened_at = OPEN, now
                self._calls.clear()
