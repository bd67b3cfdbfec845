"""Cross-partition merging: a scatter SELECT rewritten per partition, and the partitions'
results merged into what one MariaDB holding all rows would answer (issue 16).

The scatter executor calls :func:`plan_select` once per statement (cached by text), sends
``plan.sql`` to every partition, and streams the client's payloads from
:func:`merge_text_results`.
"""

from proxy.merge.operators import MergeError, merge_results, merge_text_results
from proxy.merge.partition import result_payloads
from proxy.merge.rewrite import MergeLimits, MergePlan, Refusal, explain_merge, plan_select

__all__ = [
    "MergeError",
    "MergeLimits",
    "MergePlan",
    "Refusal",
    "explain_merge",
    "merge_results",
    "merge_text_results",
    "plan_select",
    "result_payloads",
]
