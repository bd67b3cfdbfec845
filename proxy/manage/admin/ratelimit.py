"""Sign-in rate limiting: failed attempts per client address and per account name.

A sliding window: once ``max_failures`` failed sign-ins were recorded for a client address, or
for an account name, within the last ``window`` seconds, further attempts for it are refused
until the oldest of those failures leaves the window. A successful sign-in clears its account's
record (not its address's). Memory is bounded: at most ``max_keys`` addresses and names are
tracked, the least recently failed being forgotten first. Not thread-safe: use it from the
event loop only.
"""

from __future__ import annotations

import time
from collections import OrderedDict, deque
from collections.abc import Callable

__all__ = ["LoginLimiter"]


class LoginLimiter:
    def __init__(
        self,
        max_failures: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 10_000,
    ) -> None:
        if max_failures < 1 or window <= 0:
            raise ValueError("max_failures must be >= 1 and window > 0")
        self.max_failures = max_failures
        self.window = window
        self._clock = clock
        self._max_keys = max_keys
        self._failures: OrderedDict[tuple[str, str], deque[float]] = OrderedDict()

    def _recent(self, key: tuple[str, str], now: float) -> deque[float] | None:
        times = self._failures.get(key)
        if times is None:
            return None
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
            return None
        return times

    def retry_after(self, address: str, account: str) -> float:
        """Seconds until an attempt from ``address`` for ``account`` is allowed (0: now)."""
        now = self._clock()
        wait = 0.0
        for key in (("address", address), ("account", account)):
            times = self._recent(key, now)
            if times is not None and len(times) >= self.max_failures:
                wait = max(wait, times[-self.max_failures] + self.window - now)
        return wait

    def failed(self, address: str, account: str) -> None:
        now = self._clock()
        for key in (("address", address), ("account", account)):
            times = self._recent(key, now)
            if times is None:
                times = self._failures[key] = deque(maxlen=self.max_failures)
            times.append(now)
            self._failures.move_to_end(key)
        while len(self._failures) > self._max_keys:
            self._failures.popitem(last=False)

    def succeeded(self, account: str) -> None:
        self._failures.pop(("account", account), None)

    def clear(self) -> None:
        self._failures.clear()
