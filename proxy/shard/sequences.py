"""GROUP sequence values for one node (DRDS's "Sequence": unique across nodes, not consecutive).

Each node takes ranges of a sequence's values reserved for it in the catalog, one catalog
transaction per range (``Catalog.reserve_sequence_range``), and hands values out of them in
memory: two nodes never hand out the same value, and the values one node hands out go up
except across an ``ALTER SEQUENCE ... START WITH``.

:class:`SequenceAllocator` is the per-node state and does no I/O: ``take`` serves values from
the ranges it holds (the fast path, fine on the event loop), ``add`` gives it a range reserved
meanwhile. :func:`next_values` is the whole step, reserving as needed (it blocks on the
catalog: run it in a worker thread).

An ``ALTER SEQUENCE ... START WITH`` moves the sequence to a new generation: ranges of an older
generation are dropped as soon as the node sees the newer one -- in its catalog snapshot, or in
a range it reserves -- so no node keeps handing out values from before the restart once it
knows.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from auth.catalog import Catalog, UnknownSequenceError
from auth.model import SequenceRange

__all__ = ["DEFAULT_BATCH", "SequenceAllocator", "next_values"]

# How many values a node reserves at a time (more when one statement needs more).
DEFAULT_BATCH = 1000


@dataclass(slots=True)
class _Held:
    generation: int = 0
    ranges: list[SequenceRange] = field(default_factory=list)


class SequenceAllocator:
    """One node's reserved ranges, per (database, sequence); thread-safe, no I/O."""

    def __init__(self, batch: int = DEFAULT_BATCH) -> None:
        if batch < 1:
            raise ValueError("a batch is at least one value")
        self.batch = batch
        self._lock = threading.Lock()
        self._held: dict[tuple[str, str], _Held] = {}

    @staticmethod
    def _key(db: str, name: str) -> tuple[str, str]:
        return db.lower(), name.lower()

    def _state(self, db: str, name: str, generation: int) -> _Held:
        """The held ranges, dropped first if ``generation`` is newer (inside the lock)."""
        held = self._held.setdefault(self._key(db, name), _Held())
        if generation > held.generation:
            held.generation = generation
            held.ranges.clear()
        return held

    def take(self, db: str, name: str, count: int, generation: int) -> list[int] | None:
        """``count`` consecutive values of the sequence from the ranges held, in order; None
        (taking nothing) when they hold no such run. ``generation``: the sequence's, as the
        caller's snapshot shows it. One statement's values are consecutive, as InnoDB gives a
        multi-row INSERT's: drivers compute the ids of its later rows from the first
        (Connector/J's getGeneratedKeys after a rewritten batch: LAST_INSERT_ID() + i); the
        rest of a range that cannot continue the run (the next range held is not adjacent:
        another node reserved the values between) is left unused."""
        if count < 1:
            raise ValueError("take at least one value")
        with self._lock:
            held = self._state(db, name, generation)
            start = _run_start(held.ranges, count)
            if start is None:
                return None
            del held.ranges[:start]
            values: list[int] = []
            while len(values) < count:
                first = held.ranges[0]
                end = min(first.end, first.start + count - len(values))
                values.extend(range(first.start, end))
                if end == first.end:
                    held.ranges.pop(0)
                else:
                    held.ranges[0] = SequenceRange(end, first.end, first.generation)
            return values

    def wanted(self, db: str, name: str, count: int) -> int:
        """How many values to reserve so that ``take(count)`` can succeed (a new range holds
        them all, whether or not it continues the ones held)."""
        return max(self.batch, count)

    def add(self, db: str, name: str, reserved: SequenceRange) -> None:
        """A range reserved for this node (``Catalog.reserve_sequence_range``); one of an
        older generation than the newest seen is dropped."""
        with self._lock:
            held = self._state(db, name, reserved.generation)
            if reserved.generation == held.generation and len(reserved):
                held.ranges.append(reserved)

    def forget(self, db: str, name: str) -> None:
        """Drop what is held of a sequence (dropped, or its database dropped)."""
        with self._lock:
            self._held.pop(self._key(db, name), None)


def _run_start(ranges: list[SequenceRange], count: int) -> int | None:
    """The index of the first range from which ``count`` consecutive values run (through
    adjacent ranges), or None."""
    for first in range(len(ranges)):
        total = 0
        for index in range(first, len(ranges)):
            if index > first and ranges[index].start != ranges[index - 1].end:
                break
            total += len(ranges[index])
            if total >= count:
                return first
    return None


def next_values(
    allocator: SequenceAllocator, catalog: Catalog, db: str, name: str, count: int = 1
) -> list[int]:
    """``count`` values of sequence ``name`` of database ``db``: from the node's ranges,
    reserving more in the catalog when they run short. Blocking. UnknownSequenceError if the
    snapshot has no such sequence; CatalogError (CatalogUnavailableError) from the catalog."""
    while True:
        sequence = catalog.snapshot().sequence(db, name)
        if sequence is None:
            raise UnknownSequenceError(f"unknown sequence {name!r}")
        values = allocator.take(db, name, count, sequence.generation)
        if values is not None:
            return values
        wanted = allocator.wanted(db, name, count)
        allocator.add(db, name, catalog.reserve_sequence_range(db, name, wanted))
