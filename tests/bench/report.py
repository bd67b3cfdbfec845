"""Turning the measurements into results.md, results.png and results.json."""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.bench.measure import IdleLoadResult, IdleResult, LoginResult, StreamResult
from tests.bench.workloads import WORKLOADS, Cell, Workload

TARGETS = ("direct", "haproxy", "shardgate")
LABELS = {"direct": "MariaDB direct", "haproxy": "HAProxy (TCP)", "shardgate": "shardgate"}
COLORS = {"direct": "#4c72b0", "haproxy": "#dd8452", "shardgate": "#55a868"}
IDLE_TARGET_BYTES = 50 * 1024
STREAM_FLAT_KIB = 16 * 1024  # peak RSS growth during the 1M-row transfer counted as "flat"
# Big catalog vs 10 accounts counts as "the same throughput" when the proxy's CPU per query
# (noise-robust; at 8 threads the proxy's CPU is what limits it) grew by at most 10%.
SAME_COST = 1.10


@dataclass
class BigCatalog:
    accounts: int = 0
    table_grants: int = 0
    fill_seconds: float = 0.0
    start_seconds: float = 0.0  # proxy start until it answered, catalog load included
    rss_small_kib: int = 0
    rss_big_kib: int = 0
    cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # (workload, target)
    small_cells: dict[tuple[str, str], Cell] = field(default_factory=dict)  # 10 accounts
    error: str = ""


@dataclass
class Results:
    meta: dict[str, Any] = field(default_factory=dict)
    threads: list[int] = field(default_factory=list)
    workloads: list[Workload] = field(default_factory=list)
    matrix: dict[tuple[str, int, str], Cell] = field(default_factory=dict)
    logins: dict[str, LoginResult] = field(default_factory=dict)
    idle: IdleResult | None = None
    idle_load: IdleLoadResult | None = None
    stream: dict[str, StreamResult] = field(default_factory=dict)
    stream_rows: int = 0
    big: BigCatalog | None = None
    profile_summary: str = ""
    profile_path: str = ""
    notes: list[str] = field(default_factory=list)

    def cell(self, workload: str, threads: int, target: str) -> Cell | None:
        return self.matrix.get((workload, threads, target))


# --- targets -------------------------------------------------------------------------------


@dataclass
class Check:
    name: str
    goal: str
    measured: str
    status: str  # PASS / FAIL / n/a


def _ratio(a: float, b: float) -> float | None:
    return a / b if a and b else None


def _fmt_ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def qps_ratio(results: Results, workload: str, threads: int, base: str) -> float | None:
    mine = results.cell(workload, threads, "shardgate")
    other = results.cell(workload, threads, base)
    if mine is None or other is None or not mine.ok or not other.ok:
        return None
    return _ratio(mine.median("qps"), other.median("qps"))


def added_latency(results: Results, workload: str, target: str, attr: str) -> float | None:
    cell = results.cell(workload, 1, target)
    direct = results.cell(workload, 1, "direct")
    if cell is None or direct is None or not cell.ok or not direct.ok:
        return None
    return cell.median(attr) - direct.median(attr)


def checks(results: Results) -> list[Check]:
    out: list[Check] = []
    for key, goal in (("ps_ps", 0.9), ("ps_text", 0.9), ("ro_ps", 0.95), ("ro_text", 0.95)):
        wl = next((w for w in results.workloads if w.key == key), None)
        if wl is None:
            continue
        for threads in (4, 8):
            if threads not in results.threads:
                continue
            ratio = qps_ratio(results, key, threads, "haproxy")
            cell = results.cell(key, threads, "shardgate")
            if ratio is None:
                why = cell.error[:120] if cell is not None and cell.error else "not measured"
                out.append(
                    Check(
                        f"{wl.label}, {threads} thr",
                        f"shardgate/HAProxy ≥ {goal}",
                        f"failed: {why}",
                        "FAIL" if cell is not None else "n/a",
                    )
                )
                continue
            out.append(
                Check(
                    f"{wl.label}, {threads} thr",
                    f"shardgate/HAProxy ≥ {goal}",
                    f"{ratio:.2f}",
                    "PASS" if ratio >= goal else "FAIL",
                )
            )
    if 1 in results.threads:
        for key in ("ps_ps", "ps_text"):
            sg = added_latency(results, key, "shardgate", "p50_ms")
            ha = added_latency(results, key, "haproxy", "p50_ms")
            if sg is None or ha is None:
                continue
            ratio = sg / ha if ha > 0 else None
            measured = (
                f"+{sg * 1000:.0f} µs vs HAProxy +{ha * 1000:.0f} µs (p50) = {_fmt_ratio(ratio)}x"
            )
            out.append(
                Check(
                    f"added latency, 1 thr, {key.replace('_', ' ')}",
                    "≤ 1.2x HAProxy's added latency",
                    measured,
                    "PASS" if ratio is not None and ratio <= 1.2 else "FAIL",
                )
            )
    login = results.logins.get("shardgate")
    if login is not None:
        out.append(
            Check(
                "logins per second (native password)",
                "≥ 2,000/s",
                f"{login.median:,.0f}/s" + (f" ({login.error})" if not login.per_second else ""),
                "PASS" if login.median >= 2000 else "FAIL",
            )
        )
    idle = results.idle
    if idle is not None:
        per = idle.per_idle_bytes
        out.append(
            Check(
                f"proxy memory per idle connection ({idle.connections:,} conns)",
                "≤ 50 KiB",
                f"{per / 1024:.1f} KiB",
                "PASS" if idle.connections and per <= IDLE_TARGET_BYTES else "FAIL",
            )
        )
    loaded = results.idle_load
    if loaded is not None:
        # Against the same run just before the idle clients were opened (older results: the
        # matrix's run, minutes earlier, which on a shared machine measured the noise too).
        alone = results.cell("ps_text", 4, "shardgate")
        base = loaded.qps_alone or (alone.median("qps") if alone is not None else 0.0)
        ratio = _ratio(loaded.qps_loaded, base) if base else None
        measured = _fmt_ratio(ratio)
        if loaded.us_per_query_alone and loaded.us_per_query_loaded:
            measured += (
                f" (proxy CPU {loaded.us_per_query_loaded:.0f} vs "
                f"{loaded.us_per_query_alone:.0f} µs/query)"
            )
        out.append(
            Check(
                f"point select (text, 4 thr) with {loaded.idle_clients:,} idle clients open, "
                "vs without (the run just before)",
                "≥ 0.9x",
                measured,
                "PASS" if ratio is not None and ratio >= 0.9 else "FAIL",
            )
        )
        out.append(
            Check(
                "proxy memory per idle client (each ran one statement; pooled)",
                "≤ 10 KiB",
                f"{loaded.per_idle_bytes / 1024:.1f} KiB",
                "PASS" if loaded.idle_clients and loaded.per_idle_bytes <= 10 * 1024 else "FAIL",
            )
        )
        out.append(
            Check(
                "shard connections with the idle clients and the load",
                f"≤ pool size ({loaded.pool_size})",
                str(loaded.shard_connections_max),
                "PASS" if 0 < loaded.shard_connections_max <= loaded.pool_size else "FAIL",
            )
        )
    sg_stream = results.stream.get("shardgate")
    direct_stream = results.stream.get("direct")
    if sg_stream is not None and direct_stream is not None:
        ratio = _ratio(sg_stream.median_seconds, direct_stream.median_seconds)
        growth = stream_growth_kib(sg_stream)
        flat = growth is not None and growth <= STREAM_FLAT_KIB
        measured = f"{_fmt_ratio(ratio)}x direct; RSS growth " + (
            "-" if growth is None else f"{growth / 1024:.1f} MiB"
        )
        ok = ratio is not None and ratio <= 1.3 and flat
        out.append(
            Check(
                f"{results.stream_rows:,}-row result",
                "≤ 1.3x direct, flat memory",
                measured,
                "PASS" if ok else "FAIL",
            )
        )
    big = results.big
    if big is not None:
        for key in ("ps_ps", "ps_text"):
            name = (
                f"{big.accounts:,} accounts + {big.table_grants:,} grants, "
                f"{key.replace('_', ' ')} 8 thr"
            )
            big_goal = "same throughput as with 10 accounts (proxy CPU/query within 10%)"
            same = big_vs_small(results, key)
            if same is None:
                out.append(Check(name, big_goal, big.error or "not measured", "FAIL"))
                continue
            raw, normalized, cost = same
            out.append(
                Check(
                    name,
                    big_goal,
                    f"CPU/query {cost:.2f}x; q/s {raw:.2f}x raw, {normalized:.2f}x normalized "
                    "by HAProxy",
                    "PASS" if cost <= SAME_COST else "FAIL",
                )
            )
    return out


def cpu_per_query_us(cell: Cell, process: str) -> float:
    """Median over the rounds of the process's CPU microseconds per query."""
    values = [r.cpu[process] / r.qps * 1e6 for r in cell.good if process in r.cpu and r.qps]
    return statistics.median(values) if values else 0.0


def others_load(results: Results) -> float:
    """Median CPU (cores) used by unrelated processes during the sysbench runs."""
    values = [r.cpu["others"] for c in results.matrix.values() for r in c.good if "others" in r.cpu]
    return statistics.median(values) if values else 0.0


def stream_growth_kib(stream: StreamResult) -> int | None:
    """Largest RSS growth over the first sample, over the runs."""
    growths = [
        max(s for _, s in r.rss_samples) - r.rss_samples[0][1] for r in stream.good if r.rss_samples
    ]
    return max(growths) if growths else None


def big_vs_small(results: Results, key: str) -> tuple[float, float, float] | None:
    """(q/s ratio, q/s ratio normalized by HAProxy's, proxy CPU/query ratio): big / small."""
    big = results.big
    if big is None:
        return None
    small_sg = big.small_cells.get((key, "shardgate"))
    small_ha = big.small_cells.get((key, "haproxy"))
    big_sg = big.cells.get((key, "shardgate"))
    big_ha = big.cells.get((key, "haproxy"))
    if not all(c is not None and c.ok for c in (small_sg, small_ha, big_sg, big_ha)):
        return None
    assert small_sg and small_ha and big_sg and big_ha
    raw = big_sg.median("qps") / small_sg.median("qps")
    normalized = (big_sg.median("qps") / big_ha.median("qps")) / (
        small_sg.median("qps") / small_ha.median("qps")
    )
    cost = cpu_per_query_us(big_sg, "shardgate") / cpu_per_query_us(small_sg, "shardgate")
    return raw, normalized, cost


# --- markdown ------------------------------------------------------------------------------


def _num(value: float, digits: int = 0) -> str:
    return f"{value:,.{digits}f}"


def markdown(results: Results) -> str:
    meta = results.meta
    lines = [
        "# shardgate benchmark results",
        "",
        f"Produced by `{meta.get('command', 'python -m tests.bench.run')}` on "
        f"{meta.get('date', '?')} (git {meta.get('commit', '?')}); see "
        "[README.md](README.md) for what is measured and how to read it.",
        "",
        f"- Machine: {meta.get('cpus', '?')} CPUs ({meta.get('cpu_model', '?')}), "
        f"{meta.get('kernel', '?')}; client, proxies and MariaDB share the cores.",
        f"- Versions: {meta.get('versions', '')}.",
        f"- Proxy code: {meta.get('proxy_code', '?')}.",
        f"- Settings: {meta.get('settings', '')}.",
        f"- Load average before / after: {meta.get('load_before', '?')} / "
        f"{meta.get('load_after', '?')}; wall time {meta.get('wall_minutes', 0):.1f} min.",
    ]
    for note in results.notes:
        lines.append(f"- **Note:** {note}")
    lines += ["", "## Targets", "", "| what | goal | measured | result |", "|---|---|---|---|"]
    for check in checks(results):
        mark = {"PASS": "✅ PASS", "FAIL": "❌ FAIL"}.get(check.status, check.status)
        lines.append(f"| {check.name} | {check.goal} | {check.measured} | {mark} |")

    lines += [
        "",
        "## sysbench",
        "",
        "Medians over the rounds. Latency is per sysbench event: one query for "
        "oltp_point_select, one transaction (BEGIN, 14 SELECTs, COMMIT) for oltp_read_only; "
        "p50 comes from sysbench's latency histogram (≈2% buckets). *xd* = ratio to MariaDB "
        "direct, *xh* = ratio to HAProxy. CPU = cores used by that process during the run "
        "(1.00 = one full core); *proxy µs/query* = the proxy's CPU time per query (noise-robust: "
        "what one query costs the proxy); *others* = cores used meanwhile by processes that are "
        "not part of the benchmark (other jobs on the machine: the noise). *spread* = "
        "(max - min) / median of the qps over the rounds.",
    ]
    for wl in results.workloads:
        lines += [
            "",
            f"### {wl.label}",
            "",
            "| threads | target | queries/s | xd | xh | p50 ms | xd | xh | p95 ms | xd | xh "
            "| proxy CPU | proxy µs/query | mariadbd CPU | others | spread |",
            "|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for threads in results.threads:
            direct = results.cell(wl.key, threads, "direct")
            haproxy = results.cell(wl.key, threads, "haproxy")
            for target in TARGETS:
                cell = results.cell(wl.key, threads, target)
                if cell is None:
                    continue
                if not cell.ok:
                    lines.append(
                        f"| {threads} | {LABELS[target]} | **failed** | | | | | | | | | | | | | |"
                    )
                    continue
                row = [str(threads), LABELS[target]]
                for attr, digits in (("qps", 0), ("p50_ms", 3), ("p95_ms", 3)):
                    value = cell.median(attr)
                    row.append(_num(value, digits))
                    for base in (direct, haproxy):
                        ok = base is not None and base.ok and base is not cell
                        row.append(
                            _fmt_ratio(_ratio(value, base.median(attr))) if ok and base else "-"
                        )
                if target == "direct":
                    row += ["-", "-"]
                else:
                    proxy_cpu = cell.median_cpu(target)
                    row.append(f"{proxy_cpu:.2f}")
                    row.append(f"{cpu_per_query_us(cell, target):.0f}")
                row.append(f"{cell.median_cpu('mariadbd'):.2f}")
                row.append(f"{cell.median_cpu('others'):.2f}")
                row.append(f"{100 * cell.spread('qps'):.0f}%")
                lines.append("| " + " | ".join(row) + " |")
        failures = [
            (threads, target, results.cell(wl.key, threads, target))
            for threads in results.threads
            for target in TARGETS
        ]
        for threads, target, cell in failures:
            if cell is not None and not cell.ok:
                lines.append("")
                lines.append(f"*{LABELS[target]}, {threads} threads failed:* `{cell.error[:400]}`")

    if 1 in results.threads:
        lines += [
            "",
            "### Added latency at 1 thread",
            "",
            "Latency added over MariaDB direct (µs), p50 and mean, at 1 client thread.",
            "",
            "| workload | HAProxy p50 | shardgate p50 | ratio | HAProxy mean | shardgate mean "
            "| ratio |",
            "|---|---:|---:|---:|---:|---:|---:|",
        ]
        for wl in results.workloads:
            values = []
            for attr in ("p50_ms", "avg_ms"):
                ha = added_latency(results, wl.key, "haproxy", attr)
                sg = added_latency(results, wl.key, "shardgate", attr)
                values.append((ha, sg))
            if all(v is None for pair in values for v in pair):
                continue
            row = [wl.label]
            for ha, sg in values:
                row.append("-" if ha is None else f"{ha * 1000:+.0f}")
                row.append("-" if sg is None else f"{sg * 1000:+.0f}")
                row.append(_fmt_ratio(sg / ha) if ha and sg is not None and ha > 0 else "-")
            lines.append("| " + " | ".join(row) + " |")

    if results.logins:
        lines += [
            "",
            "## Logins per second",
            "",
            "Full login (TCP connect, handshake, mysql_native_password authentication) and "
            "COM_QUIT in a loop: sysbench running tests/bench/logins.lua with "
            f"{results.meta.get('login_threads', '?')} threads (libmariadb, a C client, so the "
            "client is cheap). direct and HAProxy authenticate against MariaDB; shardgate against "
            "its own catalog (it connects to the shard lazily, so a bare login does not reach "
            "MariaDB). Server CPU = cores used by the measured server process.",
            "",
            "| target | logins/s (median) | rounds | server CPU | failed rounds |",
            "|---|---:|---|---:|---:|",
        ]
        for target in TARGETS:
            login = results.logins.get(target)
            if login is None:
                continue
            rounds = ", ".join(f"{v:,.0f}" for v in login.per_second) or login.error
            server_cpu = statistics.median(login.server_cpu) if login.server_cpu else 0.0
            lines.append(
                f"| {LABELS[target]} | {login.median:,.0f} | {rounds} | {server_cpu:.2f} "
                f"| {login.failures} |"
            )

    idle = results.idle
    if idle is not None:
        lines += [
            "",
            "## Memory per idle connection",
            "",
            f"{idle.connections:,} logged-in idle connections to shardgate from the harness "
            f"process ({idle.failures} failed{'; ' + idle.error if idle.error else ''}), opened "
            f"in {idle.open_seconds:.1f} s. Proxy RSS from /proc/PID/status.",
            "",
            "| | value |",
            "|---|---:|",
            f"| RSS before | {idle.rss_before_kib / 1024:,.1f} MiB |",
            f"| RSS with {idle.connections:,} idle connections | "
            f"{idle.rss_after_kib / 1024:,.1f} MiB |",
            f"| **per idle connection** | **{idle.per_idle_bytes / 1024:.1f} KiB** |",
            f"| proxy file descriptors before / after | {idle.fds_before:,} / {idle.fds_after:,} |",
        ]
        if idle.used_connections:
            lines += [
                f"| RSS after {idle.used_connections:,} of them ran one SELECT (each then holds "
                f"a backend connection) | {idle.rss_after_used_kib / 1024:,.1f} MiB |",
                f"| extra per connection with a backend | {idle.per_used_bytes / 1024:.1f} KiB |",
            ]
        lines.append(f"| RSS after all were closed | {idle.rss_after_close_kib / 1024:,.1f} MiB |")

    if results.stream:
        lines += [
            "",
            f"## Streaming a {results.stream_rows:,}-row result",
            "",
            f"`SELECT id, k, c FROM stream1m` ({results.stream_rows:,} rows) with the mariadb "
            "client in --quick (unbuffered) mode; its output is counted and dropped. shardgate's "
            "RSS is sampled every 20 ms during the transfer.",
            "",
            "| target | seconds (median) | rounds | xdirect | MB received | RSS first → peak |",
            "|---|---:|---|---:|---:|---:|",
        ]
        direct_s = results.stream.get("direct")
        for target in TARGETS:
            stream = results.stream.get(target)
            if stream is None:
                continue
            rounds = ", ".join(f"{r.seconds:.2f}" for r in stream.runs)
            ratio = _ratio(stream.median_seconds, direct_s.median_seconds) if direct_s else None
            size = statistics.median(r.bytes for r in stream.good) / 1e6 if stream.good else 0
            rss = "-"
            samples = [r.rss_samples for r in stream.good if r.rss_samples]
            if samples:
                first = samples[0][0][1]
                peak = max(s for run in samples for _, s in run)
                rss = f"{first / 1024:.1f} → {peak / 1024:.1f} MiB"
            errors = "; ".join(r.error for r in stream.runs if not r.ok)
            lines.append(
                f"| {LABELS[target]} | {stream.median_seconds:.2f} | {rounds} "
                f"| {_fmt_ratio(ratio)} | {size:.1f} | {rss} |"
                + (f" {errors[:200]}" if errors else "")
            )

    big = results.big
    if big is not None:
        lines += [
            "",
            "## Large catalog",
            "",
            f"{big.accounts:,} extra accounts and {big.table_grants:,} table grants written "
            f"into the catalog (like tests/unit/test_catalog.py's scale test) in "
            f"{big.fill_seconds:.1f} s; the proxy was restarted and answered after "
            f"{big.start_seconds:.1f} s. Proxy RSS (idle, just started) "
            f"{big.rss_small_kib / 1024:,.0f} MiB with 10 accounts → "
            f"{big.rss_big_kib / 1024:,.0f} MiB with the large catalog. The 10-account "
            "baseline was measured in the same phase, on a freshly started proxy too.",
            "",
            "| workload (8 threads) | catalog | shardgate q/s | HAProxy q/s | shardgate/HAProxy "
            "| proxy µs/query |",
            "|---|---|---:|---:|---:|---:|",
        ]
        for key in ("ps_ps", "ps_text"):
            big_wl = next((w for w in WORKLOADS if w.key == key), None)
            if big_wl is None:
                continue
            rows: list[tuple[str, Cell | None, Cell | None]] = [
                (
                    "10 accounts",
                    big.small_cells.get((key, "shardgate")),
                    big.small_cells.get((key, "haproxy")),
                ),
                (
                    f"{big.accounts:,} accounts + {big.table_grants:,} grants",
                    big.cells.get((key, "shardgate")),
                    big.cells.get((key, "haproxy")),
                ),
            ]
            for label, sg_cell, ha_cell in rows:
                if sg_cell is None or ha_cell is None:
                    continue
                sg_q = sg_cell.median("qps") if sg_cell.ok else 0.0
                ha_q = ha_cell.median("qps") if ha_cell.ok else 0.0
                lines.append(
                    f"| {big_wl.label} | {label} | {sg_q:,.0f} | {ha_q:,.0f} "
                    f"| {_fmt_ratio(_ratio(sg_q, ha_q))} "
                    f"| {cpu_per_query_us(sg_cell, 'shardgate'):.0f} |"
                )
        if big.error:
            lines.append(f"\nError: `{big.error}`")

    if results.profile_summary:
        name = Path(results.profile_path).name
        lines += [
            "",
            "## Profile",
            "",
            "py-spy on the proxy under sysbench at 8 threads; the full summary (self, inclusive, "
            f"per file) is in [{name}]({name}). Where the interpreter's time goes, without the "
            "frames that stand for syscalls and the C event loop:",
        ]
        for section in results.profile_summary.split("== ")[1:]:
            title, _, body = section.partition(" ==")
            body_lines = body.splitlines()
            lines += ["", f"**{title}**", "", "```"]
            for i, line in enumerate(body_lines):
                if line.startswith(("samples:", "idle time")) or "% of the samples sit in" in line:
                    lines.append(line)
                if "among the other" in line:
                    lines += body_lines[i : i + 13]
                    break
            lines.append("```")
    lines += ["", "![results](results.png)", ""]
    return "\n".join(lines)


# --- plot ----------------------------------------------------------------------------------


def plot(results: Results, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(3, 2, figsize=(15, 15))
    groups = [(wl, t) for wl in results.workloads for t in results.threads]
    names = [f"{wl.key.replace('_', ' ')}\n{t} thr" for wl, t in groups]
    x = list(range(len(groups)))
    width = 0.27

    ax = axes[0][0]
    for i, target in enumerate(TARGETS):
        values = []
        for wl, t in groups:
            cell = results.cell(wl.key, t, target)
            values.append(cell.median("qps") if cell is not None and cell.ok else 0.0)
        ax.bar(
            [p + (i - 1) * width for p in x],
            values,
            width,
            label=LABELS[target],
            color=COLORS[target],
        )
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylabel("queries/s (median)")
    ax.set_title("sysbench throughput (0 = failed)")
    ax.legend(fontsize=8)

    ax = axes[0][1]
    ratios = [qps_ratio(results, wl.key, t, "haproxy") or 0.0 for wl, t in groups]
    goals = [
        (0.95 if wl.script == "oltp_read_only" else 0.9) if t >= 4 else 0.0 for wl, t in groups
    ]
    colors = ["#55a868" if r >= g else "#c44e52" for r, g in zip(ratios, goals, strict=True)]
    ax.bar(x, ratios, 0.6, color=colors)
    marked = [(p, g) for p, g in zip(x, goals, strict=True) if g]
    ax.plot(
        [p for p, _ in marked],
        [g for _, g in marked],
        "k_",
        markersize=18,
        label="target (4 and 8 threads)",
    )
    ax.axhline(1.0, color="grey", linewidth=0.8, linestyle=":")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylabel("shardgate / HAProxy queries/s")
    ax.set_title("shardgate relative to HAProxy (green = meets target)")
    ax.legend(fontsize=8)

    ax = axes[1][0]
    for i, target in enumerate(TARGETS):
        p50 = []
        p95 = []
        for wl, t in groups:
            cell = results.cell(wl.key, t, target)
            ok = cell is not None and cell.ok
            p50.append(cell.median("p50_ms") if ok and cell else 0.0)
            p95.append(cell.median("p95_ms") if ok and cell else 0.0)
        pos = [p + (i - 1) * width for p in x]
        ax.bar(pos, p50, width, label=f"{LABELS[target]} p50", color=COLORS[target])
        ax.scatter(pos, p95, marker="_", s=80, color="black", zorder=3)
    ax.set_yscale("log")
    ax.set_xticks(x, names, fontsize=7)
    ax.set_ylabel("latency per event, ms (log); bar = p50, dash = p95")
    ax.set_title("sysbench latency")
    ax.legend(fontsize=8)

    ax = axes[1][1]
    login_targets = [t for t in TARGETS if t in results.logins]
    ax.bar(
        [LABELS[t] for t in login_targets],
        [results.logins[t].median for t in login_targets],
        color=[COLORS[t] for t in login_targets],
    )
    ax.axhline(2000, color="black", linestyle="--", linewidth=1, label="target 2,000/s")
    ax.set_ylabel("logins/s (median)")
    idle = results.idle
    title = "logins per second (mysql_native_password)"
    if idle is not None:
        title += f"\nshardgate idle conn: {idle.per_idle_bytes / 1024:.1f} KiB each (target ≤ 50)"
    ax.set_title(title)
    ax.legend(fontsize=8)

    ax = axes[2][0]
    sg_stream = results.stream.get("shardgate")
    if sg_stream is not None and sg_stream.good:
        for n, run in enumerate(sg_stream.good):
            if run.rss_samples:
                ax.plot(
                    [t for t, _ in run.rss_samples],
                    [k / 1024 for _, k in run.rss_samples],
                    label=f"shardgate round {n + 1} ({run.seconds:.2f} s)",
                )
        direct = results.stream.get("direct")
        if direct is not None and direct.good:
            ax.axvline(
                direct.median_seconds,
                color=COLORS["direct"],
                linestyle="--",
                label=f"direct median {direct.median_seconds:.2f} s",
            )
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=8)
    ax.set_xlabel("seconds")
    ax.set_ylabel("proxy RSS, MiB")
    ax.set_title(f"proxy memory while streaming {results.stream_rows:,} rows")

    ax = axes[2][1]
    big = results.big
    if big is not None:
        labels = []
        small_vals = []
        big_vals = []
        for key in ("ps_ps", "ps_text"):
            small = big.small_cells.get((key, "shardgate"))
            large = big.cells.get((key, "shardgate"))
            labels.append(key.replace("_", " ") + " 8 thr")
            small_vals.append(
                cpu_per_query_us(small, "shardgate") if small is not None and small.ok else 0.0
            )
            big_vals.append(
                cpu_per_query_us(large, "shardgate") if large is not None and large.ok else 0.0
            )
        pos = list(range(len(labels)))
        ax.bar([p - 0.2 for p in pos], small_vals, 0.4, label="10 accounts")
        ax.bar(
            [p + 0.2 for p in pos],
            big_vals,
            0.4,
            label=f"{big.accounts:,} accounts + {big.table_grants:,} grants",
        )
        ax.set_xticks(pos, labels)
        ax.legend(fontsize=8)
        ax.set_title("shardgate CPU per query vs catalog size (same = same throughput)")
        ax.set_ylabel("proxy CPU µs per query (median)")
    else:
        ax.text(
            0.5,
            0.5,
            "large-catalog run not requested\n(--big-catalog)",
            ha="center",
            va="center",
            transform=ax.transAxes,
        )
        ax.set_axis_off()

    fig.suptitle(
        f"shardgate benchmark — {results.meta.get('date', '')} — "
        f"{results.meta.get('cpus', '?')} CPUs, {results.meta.get('settings', '')}",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# --- json ----------------------------------------------------------------------------------


def to_json(results: Results) -> dict[str, Any]:
    def cell(c: Cell) -> dict[str, Any]:
        return {
            "ok": c.ok,
            "error": c.error,
            "median": {a: c.median(a) for a in ("qps", "tps", "p50_ms", "p95_ms", "avg_ms")},
            "runs": [
                {
                    "qps": r.qps,
                    "p50_ms": r.p50_ms,
                    "p95_ms": r.p95_ms,
                    "avg_ms": r.avg_ms,
                    "errors": r.errors,
                    "cpu": r.cpu,
                    "ok": r.ok,
                    "error": r.error,
                }
                for r in c.runs
            ],
        }

    out: dict[str, Any] = {
        "meta": results.meta,
        "sysbench": [
            {"workload": w, "threads": t, "target": target, **cell(c)}
            for (w, t, target), c in results.matrix.items()
        ],
        "logins": {
            t: {
                "per_second": r.per_second,
                "failures": r.failures,
                "error": r.error,
                "server_cpu": r.server_cpu,
            }
            for t, r in results.logins.items()
        },
        "checks": [c.__dict__ for c in checks(results)],
    }
    if results.idle is not None:
        out["idle"] = {**results.idle.__dict__, "per_idle_bytes": results.idle.per_idle_bytes}
    if results.idle_load is not None:
        out["idle_load"] = dict(results.idle_load.__dict__)
    if results.stream:
        out["stream"] = {
            t: [
                {
                    "seconds": r.seconds,
                    "rows": r.rows,
                    "bytes": r.bytes,
                    "ok": r.ok,
                    "rss_first_kib": r.rss_samples[0][1] if r.rss_samples else None,
                    "rss_peak_kib": max(s for _, s in r.rss_samples) if r.rss_samples else None,
                }
                for r in s.runs
            ]
            for t, s in results.stream.items()
        }
    if results.big is not None:
        big = results.big
        out["big_catalog"] = {
            "accounts": big.accounts,
            "table_grants": big.table_grants,
            "fill_seconds": big.fill_seconds,
            "start_seconds": big.start_seconds,
            "rss_small_kib": big.rss_small_kib,
            "rss_big_kib": big.rss_big_kib,
            "cells": {f"{w}/{t}": cell(c) for (w, t), c in big.cells.items()},
            "small_cells": {f"{w}/{t}": cell(c) for (w, t), c in big.small_cells.items()},
            "error": big.error,
        }
    return out


def write_all(results: Results, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "results.md"
    md.write_text(markdown(results))
    js = out_dir / "results.json"
    js.write_text(json.dumps(to_json(results), indent=1, sort_keys=True) + "\n")
    png = out_dir / "results.png"
    plot(results, png)
    return [md, png, js]
