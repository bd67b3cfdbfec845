"""Login bookkeeping that never depends on the catalog being free at that moment.

A failed login (MySQL port or dashboard) counts towards the account's lockout, a successful one
resets the count, and a dashboard sign-out ends its session on every node: each is a short
catalog write (``Catalog.record_login_failure`` / ``login_succeeded`` / ``revoke_session``; a
lock also appends its audit row in the same transaction). When the catalog is busy (a SQLite
file held by another writer) or briefly unreachable (a MySQL catalog restarting), such writes
must neither be lost nor make the client wait.

``LoginBookkeeping`` offers the same calls as the catalog and runs them, strictly in the order
they were made, on one background thread: a caller waits at most ``wait`` seconds for its own
record to be written (so a lock it causes is reported at once, as before) and otherwise goes
on (its record stays queued; the result is then None, as when the catalog failed before). A
write the catalog cannot do now (``CatalogUnavailableError``) is retried, the same record
first, with a growing pause (``min_backoff`` .. ``max_backoff``), until it succeeds (but not one
whose COMMIT went unconfirmed, ``CatalogOutcomeUnknownError``: it may be written already); each
record keeps the time it happened (``now=``), so a late write counts it, and starts a lock,
as of then. The queue is bounded (``max_pending``): past that, new records are dropped and
logged (never the event loop's memory). The worker's writes wait at most ``attempt_wait`` for
another SQLite writer, so it never sits on the catalog's lock while another process holds the
file. Thread-safe; every call blocks for at most ``wait`` (call it from a worker thread in
asyncio code).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from auth.catalog import Catalog, CatalogOutcomeUnknownError, CatalogUnavailableError, LoginLock

__all__ = ["LoginBookkeeping"]

log = logging.getLogger("shardgate.catalog")


@dataclass(slots=True)
class _Record:
    """One queued catalog write and, once written, its result."""

    what: str  # for the logs: never a password (there is none here)
    write: Callable[[], LoginLock | None]
    written: threading.Event = field(default_factory=threading.Event)
    result: LoginLock | None = None


class LoginBookkeeping:
    def __init__(
        self,
        catalog: Catalog,
        *,
        wait: float = 0.5,
        max_pending: int = 10_000,
        attempt_wait: float = 0.25,
        min_backoff: float = 0.05,
        max_backoff: float = 2.0,
    ) -> None:
        if max_pending < 1 or wait < 0 or min_backoff <= 0 or max_backoff < min_backoff:
            raise ValueError("bad login bookkeeping settings")
        self._catalog = catalog
        self._wait = wait
        self._max_pending = max_pending
        self._attempt_wait = attempt_wait
        self._min_backoff = min_backoff
        self._max_backoff = max_backoff
        self._queue: deque[_Record] = deque()
        self._cond = threading.Condition()
        self._thread: threading.Thread | None = None
        self._closing = False
        self._stop_by = 0.0  # when closing: give up retrying after this (time.monotonic())
        self._dropped = 0
        self._retrying = False  # a record is waiting for the catalog (logged once per episode)

    # ------------------------------------------------------------------ the catalog's calls

    def record_login_failure(
        self, account_id: int, max_failures: int, lock_seconds: float, client: str
    ) -> LoginLock | None:
        """``Catalog.record_login_failure``, as of now: the lock if the account is locked now
        (known within ``wait``), else None."""
        if max_failures <= 0:
            return None
        at = time.time()
        return self._submit(
            f"failed login of account #{account_id} from {client}",
            lambda: self._catalog.record_login_failure(
                account_id, max_failures, lock_seconds, client, now=at
            ),
        )

    def login_succeeded(self, account_id: int, lock_seconds: float) -> LoginLock | None:
        """``Catalog.login_succeeded``, as of now: the lock if the catalog has the account
        locked (known within ``wait``), else None."""
        at = time.time()
        return self._submit(
            f"successful login of account #{account_id}",
            lambda: self._catalog.login_succeeded(account_id, lock_seconds, now=at),
        )

    def revoke_session(self, session_hash: str, expires_at: float) -> None:
        """``Catalog.revoke_session``, as of now."""
        at = time.time()

        def write() -> None:
            self._catalog.revoke_session(session_hash, expires_at, now=at)

        self._submit("end of a dashboard session", write)

    # ------------------------------------------------------------------ state

    @property
    def pending(self) -> int:
        """Records not written yet."""
        with self._cond:
            return len(self._queue)

    @property
    def dropped(self) -> int:
        """Records refused because the queue was full."""
        with self._cond:
            return self._dropped

    def flush(self, timeout: float) -> bool:
        """Wait until every record so far is written; whether that happened in time."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
        return True

    def close(self, timeout: float = 5.0) -> int:
        """Stop the worker, still trying for up to ``timeout`` seconds to write what is queued;
        returns (and logs) how many records were left unwritten."""
        with self._cond:
            self._closing = True
            self._stop_by = time.monotonic() + timeout
            thread = self._thread
            self._cond.notify_all()
        if thread is not None:
            thread.join(timeout + self._attempt_wait + 1.0)
        with self._cond:
            left = len(self._queue)
            self._queue.clear()
        if left:
            log.error("catalog unavailable at shutdown: %d login records were not written", left)
        return left

    # ------------------------------------------------------------------ internals

    def _submit(self, what: str, write: Callable[[], LoginLock | None]) -> LoginLock | None:
        record = _Record(what, write)
        with self._cond:
            if self._closing:
                log.error("login bookkeeping stopped: %s not recorded", what)
                return None
            if len(self._queue) >= self._max_pending:
                self._dropped += 1
                if self._dropped == 1 or self._dropped % 1000 == 0:
                    log.error(
                        "catalog unavailable and %d login records queued: %s dropped "
                        "(%d dropped so far)",
                        len(self._queue),
                        what,
                        self._dropped,
                    )
                return None
            self._queue.append(record)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="shardgate-login-bookkeeping", daemon=True
                )
                self._thread.start()
            self._cond.notify_all()
        if record.written.wait(self._wait):
            return record.result
        return None

    def _work(self) -> None:
        self._catalog.limit_thread_write_wait(self._attempt_wait)
        backoff = self._min_backoff
        while True:
            with self._cond:
                while not self._queue and not self._closing:
                    self._cond.wait()
                if not self._queue:
                    return
                record = self._queue[0]
            try:
                result = record.write()
            except CatalogOutcomeUnknownError as error:
                # Perhaps written: writing it again could count one failed login twice.
                log.warning("login record perhaps not written: %s (%s)", record.what, error.message)
                result = None
            except CatalogUnavailableError as error:
                with self._cond:
                    if self._closing and time.monotonic() >= self._stop_by:
                        return
                    if not self._retrying:
                        self._retrying = True
                        log.warning(
                            "catalog busy or unavailable (%s): %d login records queued, "
                            "retrying in order",
                            error.message,
                            len(self._queue),
                        )
                    self._cond.wait(backoff)
                backoff = min(backoff * 2, self._max_backoff)
                continue
            except Exception:
                # Not something waiting can fix (an integrity error, a bug): never retry it
                # forever behind the records that follow.
                log.exception("login record not written: %s", record.what)
                result = None
            backoff = self._min_backoff
            with self._cond:
                self._queue.popleft()
                record.result = result
                record.written.set()
                if self._retrying and not self._queue:
                    self._retrying = False
                    log.warning("catalog available again: queued login records written")
                self._cond.notify_all()
