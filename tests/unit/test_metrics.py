"""proxy.ops.metrics: the Prometheus text exposition format 0.0.4, byte for byte."""

from __future__ import annotations

import threading

import pytest
from prometheus_client.parser import text_string_to_metric_families

from proxy.ops.metrics import (
    Counter,
    Gauge,
    Histogram,
    Metrics,
    Registry,
    escape_label_value,
    format_value,
)
from tests.metrics_text import parse_exposition


def test_golden_exposition() -> None:
    registry = Registry()
    requests = Counter(registry, "app_requests_total", "Requests.\nSecond line \\ here.", ("code",))
    requests.labels("200").inc()
    requests.labels("200").inc(2)
    requests.labels('we"ird\\\n').inc()
    up = Gauge(registry, "app_up", "Whether it is up.")
    up.set(1)
    temp = Gauge(registry, "app_temperature", "Degrees.", ("room",))
    temp.labels("b").set(-2.5)
    temp.labels("a").set(float("inf"))
    latency = Histogram(registry, "app_latency_seconds", "Latency.", ("shard",), (0.01, 0.1, 1))
    child = latency.labels("s0")
    for value in (0.005, 0.01, 0.02, 0.5, 3.0):
        child.observe(value)
    plain = Histogram(registry, "app_size_bytes", "Sizes.", buckets=(10, 100))
    plain.observe(100)
    assert registry.render() == (
        "# HELP app_requests_total Requests.\\nSecond line \\\\ here.\n"
        "# TYPE app_requests_total counter\n"
        'app_requests_total{code="200"} 3\n'
        'app_requests_total{code="we\\"ird\\\\\\n"} 1\n'
        "# HELP app_up Whether it is up.\n"
        "# TYPE app_up gauge\n"
        "app_up 1\n"
        "# HELP app_temperature Degrees.\n"
        "# TYPE app_temperature gauge\n"
        'app_temperature{room="a"} +Inf\n'
        'app_temperature{room="b"} -2.5\n'
        "# HELP app_latency_seconds Latency.\n"
        "# TYPE app_latency_seconds histogram\n"
        'app_latency_seconds_bucket{shard="s0",le="0.01"} 2\n'
        'app_latency_seconds_bucket{shard="s0",le="0.1"} 3\n'
        'app_latency_seconds_bucket{shard="s0",le="1"} 4\n'
        'app_latency_seconds_bucket{shard="s0",le="+Inf"} 5\n'
        'app_latency_seconds_sum{shard="s0"} 3.535\n'
        'app_latency_seconds_count{shard="s0"} 5\n'
        "# HELP app_size_bytes Sizes.\n"
        "# TYPE app_size_bytes histogram\n"
        'app_size_bytes_bucket{le="10"} 0\n'
        'app_size_bytes_bucket{le="100"} 1\n'
        'app_size_bytes_bucket{le="+Inf"} 1\n'
        "app_size_bytes_sum 100\n"
        "app_size_bytes_count 1\n"
    )


def test_escaping_and_values() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert format_value(3) == "3"
    assert format_value(3.0) == "3"
    assert format_value(0.25) == "0.25"
    assert format_value(1e-05) == "1e-05"
    assert format_value(float("nan")) == "NaN"
    assert format_value(float("-inf")) == "-Inf"
    assert format_value(1e20) == "1e+20"


def test_names_buckets_and_registration_are_checked() -> None:
    registry = Registry()
    with pytest.raises(ValueError, match="must end in _total"):
        Counter(registry, "app_requests", "x")
    with pytest.raises(ValueError, match="invalid"):
        Gauge(registry, "app-up", "x")
    with pytest.raises(ValueError, match="reserved"):
        Histogram(registry, "app_h", "x", ("le",))
    with pytest.raises(ValueError, match="increasing"):
        Histogram(registry, "app_h2", "x", buckets=(1, 0.5))
    Gauge(registry, "app_g", "x")
    with pytest.raises(ValueError, match="already registered"):
        Gauge(registry, "app_g", "x")
    family = Counter(registry, "app_c_total", "x", ("a", "b"))
    with pytest.raises(ValueError, match="expected labels"):
        family.labels("only-one")


def test_cardinality_is_bounded() -> None:
    registry = Registry()
    family = Counter(registry, "app_c_total", "x", ("shard",), max_children=3)
    for index in range(10):
        family.labels(f"s{index}").inc()
    assert registry.render().splitlines()[2:] == [
        'app_c_total{shard="other"} 7',
        'app_c_total{shard="s0"} 1',
        'app_c_total{shard="s1"} 1',
        'app_c_total{shard="s2"} 1',
    ]


def test_boundary_values_fall_in_their_bucket() -> None:
    registry = Registry()
    hist = Histogram(registry, "app_h", "x", buckets=(0.001, 0.01))
    hist.observe(0.001)  # le is "less than or equal"
    hist.observe(0.0010001)
    hist.observe(-1)
    samples = parse_exposition(registry.render())
    assert samples[("app_h_bucket", (("le", "0.001"),))] == 2
    assert samples[("app_h_bucket", (("le", "0.01"),))] == 3
    assert samples[("app_h_count", ())] == 3


def test_locked_increments_from_threads_are_exact() -> None:
    registry = Registry()
    counter = Counter(registry, "app_c_total", "x").labels()
    hist = Histogram(registry, "app_h", "x", buckets=(1,)).labels()

    def work() -> None:
        for _ in range(20_000):
            counter.inc_locked()
            hist.observe_locked(0.5)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert counter.value == 80_000
    assert hist.counts == [80_000, 0]


def test_the_proxy_metric_set_parses_with_prometheus_client() -> None:
    metrics = Metrics(catalog_version=lambda: 42)
    metrics.connection_opened()
    metrics.connection_opened()
    metrics.connection_closed()
    metrics.logins_ok.inc()
    metrics.logins_failed.inc()
    metrics.logins_failed.inc()
    metrics.statement("query")
    metrics.statement("query")
    metrics.statement("no such kind")
    metrics.denied(1142)
    metrics.backend_error("s1")
    shard = metrics.shard("s0")
    assert metrics.shard("s0") is shard
    shard.latency.observe(0.0003)
    shard.latency.observe(0.2)
    text = metrics.render()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    assert families["shardgate_connections_active"].type == "gauge"
    assert families["shardgate_statement_duration_seconds"].type == "histogram"
    samples = parse_exposition(text)
    assert samples[("shardgate_connections_active", ())] == 1
    assert samples[("shardgate_connections_total", ())] == 2
    assert samples[("shardgate_logins_total", (("result", "ok"),))] == 1
    assert samples[("shardgate_logins_total", (("result", "failed"),))] == 2
    assert samples[("shardgate_statements_total", (("kind", "query"),))] == 2
    assert samples[("shardgate_statements_total", (("kind", "use"),))] == 0
    assert samples[("shardgate_statements_total", (("kind", "other"),))] == 1
    assert samples[("shardgate_denials_total", (("code", "1142"),))] == 1
    assert samples[("shardgate_backend_errors_total", (("shard", "s1"),))] == 1
    assert samples[("shardgate_backend_errors_total", (("shard", "s0"),))] == 0
    le = (("shard", "s0"), ("le", "0.0005"))
    assert samples[("shardgate_statement_duration_seconds_bucket", le)] == 1
    assert samples[("shardgate_statement_duration_seconds_count", (("shard", "s0"),))] == 2
    assert samples[("shardgate_catalog_version", ())] == 42
    assert samples[("process_resident_memory_bytes", ())] > 1_000_000
    assert samples[("process_open_fds", ())] >= 3
