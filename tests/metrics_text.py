"""A strict parser of the Prometheus text exposition format 0.0.4, for tests.

Stricter than a scraper: every family has ``# HELP`` then ``# TYPE`` before its samples, every
sample belongs to the family just declared, label values are properly escaped, no sample is
repeated, and a histogram's buckets are increasing, cumulative, end at ``+Inf`` and agree with
``_count``. Any violation raises ``ValueError`` naming the line.
"""

from __future__ import annotations

import math
import re

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]

_NAME = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\["\\n])*)"')
_SAMPLE = re.compile(rf"^({_NAME})(\{{[^\n]*\}})? (\S+)$")
_UNESCAPE = {"\\\\": "\\", '\\"': '"', "\\n": "\n"}


def _value(text: str, line: str) -> float:
    if text in ("+Inf", "-Inf", "NaN"):
        return float(text.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?", text):
        raise ValueError(f"bad value in {line!r}")
    return float(text)


def _labels(text: str, line: str) -> tuple[tuple[str, str], ...]:
    body = text[1:-1]
    result: list[tuple[str, str]] = []
    pos = 0
    while pos < len(body):
        match = _LABEL.match(body, pos)
        if match is None:
            raise ValueError(f"bad labels in {line!r}")
        value = re.sub(r'\\["\\n]', lambda m: _UNESCAPE[m.group(0)], match.group(2))
        result.append((match.group(1), value))
        pos = match.end()
        if pos < len(body):
            if body[pos] != ",":
                raise ValueError(f"bad label separator in {line!r}")
            pos += 1
            if pos == len(body):
                raise ValueError(f"trailing comma in {line!r}")
    names = [name for name, _ in result]
    if len(set(names)) != len(names):
        raise ValueError(f"repeated label in {line!r}")
    return tuple(result)


def parse_exposition(text: str) -> Samples:
    if not text.endswith("\n"):
        raise ValueError("the exposition must end with a line feed")
    samples: Samples = {}
    declared: set[str] = set()
    family = ""
    kind = ""
    help_for = ""
    buckets: dict[tuple[tuple[str, str], ...], list[tuple[float, float]]] = {}

    def finish() -> None:
        for key, series in buckets.items():
            bounds = [b for b, _ in series]
            counts = [c for _, c in series]
            if bounds != sorted(bounds) or len(set(bounds)) != len(bounds):
                raise ValueError(f"{family}: buckets not increasing")
            if not bounds or not math.isinf(bounds[-1]):
                raise ValueError(f"{family}: no +Inf bucket")
            if counts != sorted(counts):
                raise ValueError(f"{family}: bucket counts not cumulative")
            if samples.get((f"{family}_count", key)) != counts[-1]:
                raise ValueError(f"{family}: _count differs from the +Inf bucket")
            if (f"{family}_sum", key) not in samples:
                raise ValueError(f"{family}: no _sum")
        buckets.clear()

    for line in text[:-1].split("\n"):
        if line.startswith("# HELP "):
            finish()
            name = line.split(" ", 3)[2]
            if not re.fullmatch(_NAME, name) or name in declared:
                raise ValueError(f"bad or repeated family in {line!r}")
            help_for, family, kind = name, "", ""
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[2] != help_for:
                raise ValueError(f"TYPE without its HELP: {line!r}")
            if parts[3] not in ("counter", "gauge", "histogram", "summary", "untyped"):
                raise ValueError(f"bad type in {line!r}")
            family, kind = parts[2], parts[3]
            declared.add(family)
            continue
        match = _SAMPLE.match(line)
        if match is None:
            raise ValueError(f"not a sample line: {line!r}")
        name, label_text, value_text = match.groups()
        allowed = {family}
        if kind == "histogram":
            allowed = {f"{family}_bucket", f"{family}_sum", f"{family}_count"}
        if not family or name not in allowed:
            raise ValueError(f"sample outside its family: {line!r}")
        labels = _labels(label_text, line) if label_text else ()
        value = _value(value_text, line)
        key = (name, labels)
        if key in samples:
            raise ValueError(f"repeated sample: {line!r}")
        samples[key] = value
        if kind == "counter" and (value < 0 or not name.endswith("_total")):
            raise ValueError(f"bad counter sample: {line!r}")
        if name.endswith("_bucket") and kind == "histogram":
            if not labels or labels[-1][0] != "le":
                raise ValueError(f"bucket without le last: {line!r}")
            series = buckets.setdefault(labels[:-1], [])
            series.append((_value(labels[-1][1], line), value))
    finish()
    return samples
