"""Prometheus metrics without a dependency: counters, gauges and histograms, rendered in the
text exposition format 0.0.4 (``GET /metrics`` on the admin HTTP listener).

Design
------
A *family* (``Counter``, ``Gauge``, ``Histogram``) has a name, a help text and a fixed tuple of
label names. ``family.labels(*values)`` returns the *child* for one label-value combination,
created once and then reused: hot code binds children once (at start-up, per session, per
backend) and afterwards only calls ``child.inc()`` (a plain attribute add) or
``child.observe(seconds)`` (one ``bisect`` over a small tuple and two adds). Families without
labels are their own single child.

Cardinality is bounded: a family accepts at most ``max_children`` label combinations (default
64); further combinations all land in one more child whose label values are ``"other"``, so a
misbehaving caller cannot grow memory or the scrape without bound.

Thread safety: one event loop plus worker threads. Creating children and rendering take the
registry's lock. ``inc()``/``observe()`` are deliberately lock-free: under the GIL a read of an
attribute is atomic, but ``x += 1`` from two threads at once on the *same* child can lose an
increment. The event loop is one thread, so children touched only from the loop (all the
session hot path) are exact; code running in worker threads uses ``inc_locked()``.

Cost (``python -m proxy.ops.metrics`` runs ``_bench()``: ``timeit``, best of 5 x 1,000,000;
CPython 3.11.7 on this 2-core machine shared with other jobs)::

    counter child .inc()                        ~  34 ns
    histogram child .observe(0.0012)            ~  89 ns
    family .labels("s0") (existing child)       ~ 103 ns
    Metrics.statement("query")  (dict lookup)   ~  56 ns
    render() of the whole set, 2 shards         ~  88 µs (per scrape, not per query)

What the session must call (the lead wires these into ``proxy/session/session.py``; all on
``ctx.metrics``, a ``Metrics``):

* after a successful login:           ``metrics.logins_ok.inc()``
* after a refused login (1045, ...):  ``metrics.logins_failed.inc()``
* per login attempt the throttle delays: ``metrics.logins_throttled.inc()``
* per statement, after classifying:   ``metrics.statement(kind)`` with ``Statement.kind.value``
  (``"query"``, ``"use"``, ``"session"``, ...) or ``"prepare"`` / ``"execute"`` for
  COM_STMT_PREPARE / COM_STMT_EXECUTE
* per refusal sent to the client:     ``metrics.denied(errno)`` (1142, 1044, 1227, 1064, ...)
* per backend connection (bind once): ``shard = metrics.shard(shard_name)``; then per relayed
  statement ``shard.latency.observe(seconds)`` (from sending the command to the last packet
  of its answer, ``time.perf_counter()`` deltas) and ``shard.errors.inc()`` when the backend
  cannot be reached, drops the connection or times out (not for ordinary SQL errors the
  shard returns to the client)
* per statement on sharded tables (``proxy/session/sharded.py``): ``metrics.sharded(route,
  physical_statements)``
* when the shard refuses a relayed statement on privileges: ``metrics.classifier_miss(errno)``
  (through ``proxy.backend.mirror.shard_refused``, which also logs it)

``ProxyServer`` already counts connections (``connection_opened()`` / ``connection_closed()``
in its accept wrapper), catalog refresh failures, config reloads and the catalog version; the
session counts connections that end without a goodbye (``aborted_handshake`` /
``aborted_session``); the catalog counts changes whose outcome is unknown.
"""

from __future__ import annotations

import math
import os
import resource
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Sequence
from typing import Final

__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_LATENCY_BUCKETS",
    "Counter",
    "Gauge",
    "Histogram",
    "Metrics",
    "Registry",
    "ShardMetrics",
]

CONTENT_TYPE: Final = "text/plain; version=0.0.4; charset=utf-8"
OTHER: Final = "other"
MAX_CHILDREN: Final = 64

# Seconds: a relayed point select is ~0.2 ms; a slow report is seconds.
DEFAULT_LATENCY_BUCKETS: Final = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)

STATEMENT_KINDS: Final = (
    "query",
    "session",
    "use",
    "show_databases",
    "show_processlist",
    "show_digest",
    "kill",
    "account",
    "show_status",
    "refused",
    "prepare",
    "execute",
)
# How a statement on sharded tables ran (``Metrics.sharded``).
SHARDED_ROUTES: Final = ("routed", "scatter", "merged", "broadcast", "copy", "hint")


# ---------------------------------------------------------------------------- formatting


def format_value(value: float) -> str:
    """A sample value as Prometheus writes it: ``+Inf``/``-Inf``/``NaN``; integers without a
    fraction (``3``); other floats in Python's shortest round-trip form (``0.25``, ``1e-05``)."""
    if isinstance(value, int):
        return str(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value.is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def escape_label_value(value: str) -> str:
    """Label values escape backslash, double quote and line feed."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def escape_help(text: str) -> str:
    """HELP text escapes backslash and line feed (not quotes)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _check_name(name: str) -> None:
    ok = bool(name) and not name[0].isdigit()
    ok = ok and all(c.isascii() and (c.isalnum() or c in "_:") for c in name)
    if not ok:
        raise ValueError(f"invalid metric or label name {name!r}")


def _label_text(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{n}="{escape_label_value(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


# ---------------------------------------------------------------------------- children


class CounterChild:
    """One counter time series. ``inc()`` is lock-free (see the module docstring)."""

    __slots__ = ("_lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self.value: float = 0
        self._lock = lock

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def inc_locked(self, amount: float = 1) -> None:
        """``inc()`` for callers in worker threads."""
        with self._lock:
            self.value += amount


class GaugeChild:
    __slots__ = ("_lock", "value")

    def __init__(self, lock: threading.Lock) -> None:
        self.value: float = 0
        self._lock = lock

    def set(self, value: float) -> None:
        self.value = value

    def inc(self, amount: float = 1) -> None:
        self.value += amount

    def dec(self, amount: float = 1) -> None:
        self.value -= amount

    def inc_locked(self, amount: float = 1) -> None:
        with self._lock:
            self.value += amount


class HistogramChild:
    """Counts per bucket (not cumulative; cumulated when rendered), the sum of observations."""

    __slots__ = ("_lock", "_upper", "counts", "sum")

    def __init__(self, upper: tuple[float, ...], lock: threading.Lock) -> None:
        self._upper = upper
        self.counts = [0] * (len(upper) + 1)  # the last one is +Inf
        self.sum = 0.0
        self._lock = lock

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self._upper, value)] += 1
        self.sum += value

    def observe_locked(self, value: float) -> None:
        with self._lock:
            self.observe(value)


# ---------------------------------------------------------------------------- families


class _Family:
    TYPE = ""

    def __init__(
        self,
        registry: Registry,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        max_children: int = MAX_CHILDREN,
    ) -> None:
        _check_name(name)
        for label in labelnames:
            _check_name(label)
            if label.startswith("__") or label == "le":
                raise ValueError(f"reserved label name {label!r}")
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = registry.lock
        self._children: dict[tuple[str, ...], object] = {}
        self._max = max_children
        registry.register(self)

    def _new_child(self) -> object:
        raise NotImplementedError

    def _child(self, values: tuple[str, ...]) -> object:
        child = self._children.get(values)
        if child is not None:
            return child
        if len(values) != len(self.labelnames):
            raise ValueError(f"{self.name}: expected labels {self.labelnames}, got {values}")
        with self._lock:
            child = self._children.get(values)
            if child is None:
                if len(self._children) >= self._max:
                    values = (OTHER,) * len(self.labelnames)
                    child = self._children.get(values)
                if child is None:
                    child = self._new_child()
                    self._children[values] = child
            return child

    def samples(self) -> list[str]:
        raise NotImplementedError

    def _sorted_children(self) -> list[tuple[tuple[str, ...], object]]:
        with self._lock:
            return sorted(self._children.items())

    def _value_samples(self) -> list[str]:
        """One sample per child, for families whose children hold a single ``value``."""
        return [
            f"{self.name}{_label_text(self.labelnames, values)} {format_value(child.value)}"
            for values, child in self._sorted_children()
            if isinstance(child, (CounterChild, GaugeChild))
        ]

    def render(self) -> str:
        lines = [f"# HELP {self.name} {escape_help(self.help)}", f"# TYPE {self.name} {self.TYPE}"]
        lines += self.samples()
        return "\n".join(lines) + "\n"


class Counter(_Family):
    TYPE = "counter"

    def __init__(
        self,
        registry: Registry,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        max_children: int = MAX_CHILDREN,
    ) -> None:
        if not name.endswith("_total"):
            raise ValueError(f"counter {name!r} must end in _total")
        super().__init__(registry, name, help_text, labelnames, max_children)
        self._single = self.labels() if not self.labelnames else None

    def _new_child(self) -> CounterChild:
        return CounterChild(self._lock)

    def labels(self, *values: str) -> CounterChild:
        child = self._child(values)
        assert isinstance(child, CounterChild)
        return child

    def inc(self, amount: float = 1) -> None:
        assert self._single is not None, f"{self.name} has labels; use labels(...).inc()"
        self._single.value += amount

    def total(self) -> float:
        """The sum over every label combination (the one value of a family without labels)."""
        with self._lock:
            children = list(self._children.values())
        return sum(child.value for child in children if isinstance(child, CounterChild))

    def samples(self) -> list[str]:
        return self._value_samples()


class Gauge(_Family):
    TYPE = "gauge"

    def __init__(
        self,
        registry: Registry,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        max_children: int = MAX_CHILDREN,
        function: Callable[[], float] | None = None,
    ) -> None:
        """``function``: for a gauge without labels, read at each scrape instead of a value."""
        super().__init__(registry, name, help_text, labelnames, max_children)
        if function is not None and self.labelnames:
            raise ValueError("a function gauge has no labels")
        self._function = function
        self._single = self.labels() if not self.labelnames else None

    def _new_child(self) -> GaugeChild:
        return GaugeChild(self._lock)

    def labels(self, *values: str) -> GaugeChild:
        child = self._child(values)
        assert isinstance(child, GaugeChild)
        return child

    def set(self, value: float) -> None:
        assert self._single is not None
        self._single.value = value

    def inc(self, amount: float = 1) -> None:
        assert self._single is not None
        self._single.value += amount

    def dec(self, amount: float = 1) -> None:
        assert self._single is not None
        self._single.value -= amount

    @property
    def value(self) -> float:
        assert self._single is not None
        return self._function() if self._function is not None else self._single.value

    def samples(self) -> list[str]:
        if self._function is not None:
            try:
                value = self._function()
            except Exception:  # a broken probe must not break the scrape
                return []
            return [f"{self.name} {format_value(value)}"]
        return self._value_samples()


class Histogram(_Family):
    TYPE = "histogram"

    def __init__(
        self,
        registry: Registry,
        name: str,
        help_text: str,
        labelnames: Sequence[str] = (),
        buckets: Iterable[float] = DEFAULT_LATENCY_BUCKETS,
        max_children: int = MAX_CHILDREN,
    ) -> None:
        upper = tuple(float(b) for b in buckets)
        if upper and math.isinf(upper[-1]):
            upper = upper[:-1]  # +Inf is implicit
        if not upper or list(upper) != sorted(set(upper)):
            raise ValueError("histogram buckets must be increasing and unique")
        self.upper = upper
        super().__init__(registry, name, help_text, labelnames, max_children)
        self._single = self.labels() if not self.labelnames else None

    def _new_child(self) -> HistogramChild:
        return HistogramChild(self.upper, self._lock)

    def labels(self, *values: str) -> HistogramChild:
        child = self._child(values)
        assert isinstance(child, HistogramChild)
        return child

    def observe(self, value: float) -> None:
        assert self._single is not None
        self._single.observe(value)

    def samples(self) -> list[str]:
        lines: list[str] = []
        bounds = [format_value(b) for b in self.upper] + ["+Inf"]
        for values, child in self._sorted_children():
            assert isinstance(child, HistogramChild)
            with self._lock:  # one consistent view of the counts and the sum
                counts, total = list(child.counts), child.sum
            cumulative = 0
            for bound, count in zip(bounds, counts, strict=True):
                cumulative += count
                labels = _label_text(self.labelnames, values, f'le="{bound}"')
                lines.append(f"{self.name}_bucket{labels} {cumulative}")
            labels = _label_text(self.labelnames, values)
            lines.append(f"{self.name}_sum{labels} {format_value(total)}")
            lines.append(f"{self.name}_count{labels} {cumulative}")
        return lines


class Registry:
    """Families in registration order; ``render()`` is the whole exposition."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._families: dict[str, _Family] = {}

    def register(self, family: _Family) -> None:
        with self.lock:
            if family.name in self._families:
                raise ValueError(f"metric {family.name!r} is already registered")
            self._families[family.name] = family

    def render(self) -> str:
        with self.lock:
            families = list(self._families.values())
        return "".join(family.render() for family in families)


# ---------------------------------------------------------------------------- process


def _rss_bytes() -> float:
    with open("/proc/self/statm", "rb") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _open_fds() -> float:
    return len(os.listdir("/proc/self/fd"))


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _FunctionCounter(_Family):
    """A counter read from a function at scrape time (process CPU seconds)."""

    TYPE = "counter"

    def __init__(
        self, registry: Registry, name: str, help_text: str, function: Callable[[], float]
    ) -> None:
        super().__init__(registry, name, help_text)
        self._function = function

    def samples(self) -> list[str]:
        try:
            return [f"{self.name} {format_value(self._function())}"]
        except Exception:
            return []


# ---------------------------------------------------------------------------- the proxy's set


class ShardMetrics:
    """The children of one shard, bound once per backend connection by the session."""

    __slots__ = ("errors", "latency", "name")

    def __init__(self, name: str, errors: CounterChild, latency: HistogramChild) -> None:
        self.name = name
        self.errors = errors
        self.latency = latency


class Metrics:
    """shardgate's metric set. One per process, on ``ServerContext.metrics``."""

    def __init__(
        self,
        catalog_version: Callable[[], float] | None = None,
        catalog_outcomes_unknown: Callable[[], float] | None = None,
    ) -> None:
        """``catalog_version`` / ``catalog_outcomes_unknown``: read at scrape time from the
        process's catalog (``Catalog.snapshot().version``, ``Catalog.outcomes_unknown``)."""
        # For SHOW STATUS (not exported): the most client connections open at once, and the
        # bytes of the client connections closed so far (open ones count their own).
        self.max_connections_active = 0
        self.closed_bytes_received = 0
        self.closed_bytes_sent = 0
        self.registry = registry = Registry()
        self.connections_active = Gauge(
            registry, "shardgate_connections_active", "Client connections open now."
        )
        self.connections_total = Counter(
            registry, "shardgate_connections_total", "Client connections accepted."
        )
        self.connections_aborted = Counter(
            registry,
            "shardgate_connections_aborted_total",
            "Client connections that ended without a goodbye: before logging in (stage "
            '"handshake": TCP health checks, scanners) or after, without COM_QUIT ("session").',
            ("stage",),
            max_children=2,
        )
        self.aborted_handshake = self.connections_aborted.labels("handshake")
        self.aborted_session = self.connections_aborted.labels("session")
        self.logins_total = Counter(
            registry,
            "shardgate_logins_total",
            "Client logins by result (ok or failed).",
            ("result",),
            max_children=2,
        )
        self.logins_ok = self.logins_total.labels("ok")
        self.logins_failed = self.logins_total.labels("failed")
        self.logins_throttled = Counter(
            registry,
            "shardgate_logins_throttled_total",
            "Login attempts delayed because their client address failed too often lately.",
        )
        self.statements_total = Counter(
            registry,
            "shardgate_statements_total",
            "Statements received, by kind.",
            ("kind",),
            max_children=len(STATEMENT_KINDS) + 1,
        )
        self._statements = {kind: self.statements_total.labels(kind) for kind in STATEMENT_KINDS}
        self._statement_other = self.statements_total.labels(OTHER)
        self.denials_total = Counter(
            registry,
            "shardgate_denials_total",
            "Statements and logins refused by the proxy, by MySQL error number.",
            ("code",),
        )
        self._denials: dict[int, CounterChild] = {}
        self.backend_errors_total = Counter(
            registry,
            "shardgate_backend_errors_total",
            "Backend connection failures (connect, lost, timeout), by shard.",
            ("shard",),
        )
        self.statement_duration = Histogram(
            registry,
            "shardgate_statement_duration_seconds",
            "Time from relaying a statement to a shard to the end of its answer.",
            ("shard",),
        )
        self._shards: dict[str, ShardMetrics] = {}
        self.classifier_misses_total = Counter(
            registry,
            "shardgate_classifier_misses_total",
            "Statements the proxy allowed that the shard refused on privileges (its account "
            "mirrors the caller's grants), by MySQL error number.",
            ("code",),
            max_children=8,
        )
        self.catalog_refresh_failures = Counter(
            registry,
            "shardgate_catalog_refresh_failures_total",
            "Catalog polls that failed (the proxy keeps serving the last good snapshot).",
        )
        self.catalog_version = Gauge(
            registry,
            "shardgate_catalog_version",
            "The catalog version this process serves.",
            function=catalog_version,
        )
        _FunctionCounter(
            registry,
            "shardgate_catalog_outcome_unknown_total",
            "Catalog changes whose COMMIT was sent but never confirmed (connection lost): they "
            "may or may not have been applied; the catalog's audit table tells.",
            catalog_outcomes_unknown or (lambda: 0),
        )
        self.config_reloads_total = Counter(
            registry,
            "shardgate_config_reloads_total",
            "Configuration reloads (SIGHUP), by result (ok or failed).",
            ("result",),
            max_children=2,
        )
        self.pool_connections = Gauge(
            registry,
            "shardgate_pool_connections",
            "Backend connections of the pool by shard and state (open: all, idle: given back "
            "and unused; proxy/backend/pool.py), and sessions waiting for one.",
            ("shard", "state"),
        )
        self.pool_events = Counter(
            registry,
            "shardgate_pool_events_total",
            "Pool events by shard: waits for a connection, waits that ended in 1040 "
            "(timeout), connections handed from one session to another (handoff), idle "
            "connections closed to make room for another account's (eviction).",
            ("shard", "event"),
        )
        self._pool_seen: dict[tuple[str, str], int] = {}
        self.sharded_statements_total = Counter(
            registry,
            "shardgate_sharded_statements_total",
            "Statements on sharded or broadcast tables by how they ran: routed (the partitions "
            "their shard key fixes), scatter (every partition, results concatenated), merged "
            "(every partition, through the merge engine), broadcast (a write to every copy), "
            "copy (one copy), hint (TDDL hints).",
            ("route",),
            max_children=len(SHARDED_ROUTES) + 1,
        )
        self._sharded = {r: self.sharded_statements_total.labels(r) for r in SHARDED_ROUTES}
        self.sharded_physical_statements = Histogram(
            registry,
            "shardgate_sharded_physical_statements",
            "Physical statements one statement on sharded tables ran (one per physical table "
            "it reached: D x T for a scatter over a table split by TBPARTITION BY).",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
        )
        # routed(): the counters one statement routed to one partition adds to.
        self._routed = self._sharded["routed"]
        self._one_physical = self.sharded_physical_statements.labels()
        self.config_reloads_ok = self.config_reloads_total.labels("ok")
        self.config_reloads_failed = self.config_reloads_total.labels("failed")
        self.config_reload_time = Gauge(
            registry,
            "shardgate_config_last_reload_success_timestamp_seconds",
            "When the configuration was last loaded successfully (Unix time).",
        )
        self.config_reload_time.set(time.time())
        self.start_time = Gauge(
            registry,
            "process_start_time_seconds",
            "Start time of the process since the Unix epoch in seconds.",
        )
        self.start_time.set(round(time.time(), 3))
        _FunctionCounter(
            registry,
            "process_cpu_seconds_total",
            "Total user and system CPU time spent in seconds.",
            _cpu_seconds,
        )
        Gauge(
            registry,
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            function=_rss_bytes,
        )
        Gauge(registry, "process_open_fds", "Number of open file descriptors.", function=_open_fds)

    # --- connections (ProxyServer's accept wrapper) ---

    def connection_opened(self) -> None:
        self.connections_total.inc()
        self.connections_active.inc()
        active = int(self.connections_active.value)
        if active > self.max_connections_active:
            self.max_connections_active = active

    def connection_closed(self, bytes_received: int = 0, bytes_sent: int = 0) -> None:
        self.connections_active.dec()
        self.closed_bytes_received += bytes_received
        self.closed_bytes_sent += bytes_sent

    # --- the session's calls (see the module docstring) ---

    def statement(self, kind: str) -> None:
        self._statements.get(kind, self._statement_other).value += 1

    def statement_count(self, kind: str) -> int:
        """Statements of ``kind`` counted so far (one of ``STATEMENT_KINDS``)."""
        return int(self._statements[kind].value)

    def sharded(self, route: str, physical: int) -> None:
        """One statement on sharded tables ran as ``route`` (``SHARDED_ROUTES``) with
        ``physical`` physical statements."""
        child = self._sharded.get(route)
        if child is None:
            child = self.sharded_statements_total.labels(route)
        child.value += 1
        self.sharded_physical_statements.observe(physical)

    def routed(self, kind: str) -> None:
        """``statement(kind)`` and ``sharded("routed", 1)`` at the cost of three additions
        (the fast path's): one statement routed to one partition (1 is the first bucket's
        bound)."""
        self._statements.get(kind, self._statement_other).value += 1
        self._routed.value += 1
        one = self._one_physical
        one.counts[0] += 1
        one.sum += 1

    def denied(self, code: int) -> None:
        child = self._denials.get(code)
        if child is None:
            child = self._denials[code] = self.denials_total.labels(str(code))
        child.value += 1

    def shard(self, name: str) -> ShardMetrics:
        bound = self._shards.get(name)
        if bound is None:
            bound = ShardMetrics(
                name,
                self.backend_errors_total.labels(name),
                self.statement_duration.labels(name),
            )
            self._shards[name] = bound
        return bound

    def pool(self, shard: str, figures: dict[str, int], events: dict[str, int]) -> None:
        """A pool's current ``figures`` (open, idle, waiting) and its cumulative ``events``."""
        for state, value in figures.items():
            self.pool_connections.labels(shard, state).set(value)
        for event, total in events.items():
            seen = self._pool_seen.get((shard, event), 0)
            if total > seen:
                self.pool_events.labels(shard, event).inc(total - seen)
                self._pool_seen[(shard, event)] = total

    def backend_error(self, shard: str) -> None:
        self.shard(shard).errors.value += 1

    def classifier_miss(self, code: int) -> None:
        self.classifier_misses_total.labels(str(code)).inc()

    def serve_merged(self, merge: Callable[[str], str]) -> None:
        """Serve ``merge(own exposition)`` from ``render()`` instead of this process's own
        samples alone: with several worker processes the server hands in the union of every
        worker's (``WorkerSlot.merged_metrics`` in proxy/ops/workers.py)."""
        self._merge = merge

    _merge: Callable[[str], str] | None = None

    def render(self) -> str:
        """The exposition ``GET /metrics`` serves (see ``serve_merged``)."""
        own = self.registry.render()
        return own if self._merge is None else self._merge(own)

    def render_own(self) -> str:
        return self.registry.render()


def _bench() -> None:  # pragma: no cover - the numbers in the module docstring
    import timeit

    m = Metrics(lambda: 1)
    for name in ("s0", "s1"):
        m.shard(name).latency.observe(0.001)
    env = {"m": m, "c": m.logins_ok, "h": m.shard("s0").latency}
    cases = {
        "counter child .inc()": "c.inc()",
        "histogram child .observe(0.0012)": "h.observe(0.0012)",
        'family .labels("s0") (existing child)': 'm.backend_errors_total.labels("s0")',
        'Metrics.statement("query")': 'm.statement("query")',
        "render()": "m.render()",
    }
    for label, stmt in cases.items():
        number = 200 if label == "render()" else 1_000_000
        best = min(timeit.repeat(stmt, number=number, repeat=5, globals=env)) / number
        print(f"{label:45s} {best * 1e9:10.0f} ns")


if __name__ == "__main__":  # pragma: no cover
    _bench()
