"""Cross-partition merging: a scatter SELECT rewritten per partition, and the partitions'
results merged into what one MariaDB holding all rows would answer (issue 16).

How the scatter executor uses it::

    plan = plan_select(logical_sql, limits)          # cached by text; pure
    if isinstance(plan, Refusal):                     # -> ERR plan.errno / plan.sqlstate /
        ...                                           #    plan.message, nothing sent
    # plan.sql is the logical statement each partition runs (physical names still to be
    # substituted, as for any routed statement).
    for conn, sql in partitions:                      # send to every partition first
        conn.send(b"\\x03" + sql.encode())            # (binary: COM_STMT_EXECUTE of it)
    streams = [result_payloads(conn, capabilities=conn.capabilities, max_packet=...)
               for conn in connections]
    async for payload in merge_results(plan, streams, capabilities=client_caps,
                                       binary=False, limits=limits,
                                       schema=b"logical_db", tables={b"t_00": b"t", ...}):
        client.write(seq, payload)                    # column count, definitions, [EOF],
                                                      # rows, EOF/OK -- or an ERR

When ``merge_results`` is exhausted every partition's answer has been read to its end (the
connections are reusable). ``explain_merge(plan)`` describes the steps for EXPLAIN.
"""

from proxy.merge.operators import MergeError, merge_batches, merge_results, merge_text_results
from proxy.merge.partition import result_payloads
from proxy.merge.rewrite import MergeLimits, MergePlan, Refusal, explain_merge, plan_select

__all__ = [
    "MergeError",
    "MergeLimits",
    "MergePlan",
    "Refusal",
    "explain_merge",
    "merge_batches",
    "merge_results",
    "merge_text_results",
    "plan_select",
    "result_payloads",
]
