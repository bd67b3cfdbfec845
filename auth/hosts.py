"""Host patterns: validation, SQL LIKE matching against a client IP, and login precedence.

A host pattern is an IP address pattern: IPv4/IPv6 characters plus the SQL LIKE wildcards
``_`` (exactly one character) and ``%`` (zero or more). Matching is case-insensitive (IPv6 hex
digits) and has no escape character. Pure functions: no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from auth.errors import ErrorCode, SqlError, sql_error
from auth.model import Account

# MySQL's limit on the host part of an account name.
MAX_HOST_LENGTH = 255

_HOST_CHARACTERS = frozenset("0123456789abcdefABCDEF.:_%")
_WILDCARDS = ("_", "%")


def invalid_host() -> SqlError:
    return sql_error(ErrorCode.TDDL_INVALID_HOST, "Invalid host. Please use IP address instead.")


def validate_host_pattern(host: str) -> None:
    """Raise TDDL-5109 unless ``host`` is made only of IP characters, ``_`` and ``%``.

    The empty string and hosts longer than 255 characters are invalid too.
    """
    if not host or len(host) > MAX_HOST_LENGTH or not _HOST_CHARACTERS.issuperset(host):
        raise invalid_host()


def has_wildcard(pattern: str) -> bool:
    return "_" in pattern or "%" in pattern


def normalize_host_pattern(host: str) -> str:
    """The spelling to store: lower case, and a literal IP address in its canonical form.

    ``'FE80:0::1'`` -> ``'fe80::1'``, ``'::ffff:10.0.0.1'`` -> ``'10.0.0.1'`` (clients are matched
    by their IPv4 form), patterns with wildcards only lower-cased. Call after validation.
    """
    lowered = host.lower()
    if has_wildcard(lowered):
        return lowered
    return normalize_client_ip(lowered)


def normalize_client_ip(ip: str) -> str:
    """A client address as patterns are matched against it.

    IPv4-mapped IPv6 addresses become their IPv4 form, IPv6 addresses their canonical
    lower-case compressed form without a zone (``%eth0``); anything that is not an IP address is
    only lower-cased.
    """
    text = ip.strip()
    if text.startswith("[") and text.endswith("]"):
        text = text[1:-1]
    if ":" in text:
        text = text.split("%", 1)[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return ip.lower()
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(address)


def _like(pattern: str, text: str) -> bool:
    """SQL LIKE without an escape character, in O(len(pattern) * len(text)) at worst.

    The greedy two-pointer algorithm: no regular expression, so no pattern can make matching
    backtrack exponentially.
    """
    p = t = 0
    star = -1  # position of the last '%' seen in pattern
    resume = 0  # position in text that '%' is currently assumed to have consumed up to
    while t < len(text):
        if p < len(pattern) and (pattern[p] == "_" or pattern[p] == text[t]):
            p += 1
            t += 1
        elif p < len(pattern) and pattern[p] == "%":
            star = p
            resume = t
            p += 1
        elif star >= 0:
            p = star + 1
            resume += 1
            t = resume
        else:
            return False
    while p < len(pattern) and pattern[p] == "%":
        p += 1
    return p == len(pattern)


def host_matches(pattern: str, ip: str) -> bool:
    """Whether the client address ``ip`` matches the host pattern (case-insensitive)."""
    return _like(pattern.lower(), normalize_client_ip(ip))


def literal_prefix_length(pattern: str) -> int:
    """Characters before the first wildcard; the whole length if there is none."""
    positions = [i for i in (pattern.find(w) for w in _WILDCARDS) if i >= 0]
    return min(positions) if positions else len(pattern)


def choose_account(candidates: Iterable[Account], ip: str) -> Account | None:
    """The account a login from ``ip`` binds to, among accounts of one (exact) user name.

    Among those whose pattern matches: a host equal to the address wins; otherwise the longest
    literal prefix before the first wildcard; ties go to the account created first (lowest
    ``created_seq``).
    """
    address = normalize_client_ip(ip)
    best: Account | None = None
    best_rank: tuple[bool, int, int] | None = None
    for account in candidates:
        pattern = account.host.lower()
        if not _like(pattern, address):
            continue
        rank = (pattern == address, literal_prefix_length(pattern), -account.created_seq)
        if best_rank is None or rank > best_rank:
            best, best_rank = account, rank
    return best
