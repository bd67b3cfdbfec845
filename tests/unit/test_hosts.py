"""Host patterns: validation, LIKE matching (table file host_cases.txt) and login precedence."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from auth.errors import SqlError
from auth.hosts import (
    choose_account,
    host_matches,
    literal_prefix_length,
    normalize_client_ip,
    normalize_host_pattern,
    validate_host_pattern,
)
from auth.model import Account

CASES_FILE = Path(__file__).with_name("host_cases.txt")


def _load_cases() -> list[tuple[str, str, bool]]:
    cases = []
    for number, raw in enumerate(CASES_FILE.read_text().splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        fields = line.split()
        assert len(fields) == 3 and fields[2] in ("yes", "no"), f"line {number}: {raw!r}"
        cases.append((fields[0], fields[1], fields[2] == "yes"))
    return cases


HOST_CASES = _load_cases()


def test_case_file_is_not_empty() -> None:
    assert len(HOST_CASES) >= 40


@pytest.mark.parametrize(("pattern", "ip", "expected"), HOST_CASES)
def test_host_matches(pattern: str, ip: str, expected: bool) -> None:
    assert host_matches(pattern, ip) is expected


# --- validation ---

VALID_HOSTS = [
    "%",
    "_",
    "30.9.%.%",
    "30.9.12_.%",
    "30.9.1%.234",
    "192.168.3.10",
    "::1",
    "fe80::%",
    "FE80::1",
    "::ffff:127.0.0.1",
    # Only characters are checked: hex letters pass although this is no address. It can never
    # match an IPv4 client, so it is harmless.
    "bad.cafe",
    "1" * 255,
]

INVALID_HOSTS = [
    "localhost",
    "a.com",
    "10.0.0.0/8",
    # The seed writes david@'30.9.12_.xxx', but there 'xxx' is a placeholder for digits:
    # 'x' is no hex digit, so the literal pattern is invalid.
    "30.9.12_.xxx",
    "",
    " 10.0.0.1",
    "10.0.0.1 ",
    "10.0.0.1'",
    "10.0.0.*",
    "fe80::1%eth0",  # '%' is allowed, but 't', 'h' are not
    "\uff11\uff10.0.0.1",  # full-width digits
    "1" * 256,
]


@pytest.mark.parametrize("host", VALID_HOSTS)
def test_valid_hosts(host: str) -> None:
    validate_host_pattern(host)


@pytest.mark.parametrize("host", INVALID_HOSTS)
def test_invalid_hosts(host: str) -> None:
    with pytest.raises(SqlError) as info:
        validate_host_pattern(host)
    assert info.value.errno == 5109
    assert info.value.sqlstate == "HY000"
    assert info.value.message == (
        "ERR-CODE: [TDDL-5109][ERR_INVALID_HOST] Invalid host. Please use IP address instead."
    )


# --- prefix and normalisation ---


@pytest.mark.parametrize(
    ("pattern", "length"),
    [
        ("%", 0),
        ("_", 0),
        ("30.9.12_.%", 7),
        ("30.9.1%.234", 6),
        ("30.9.%.%", 5),
        ("10.0.0.1", 8),
        ("fe80::%", 6),
        ("", 0),
    ],
)
def test_literal_prefix_length(pattern: str, length: int) -> None:
    assert literal_prefix_length(pattern) == length


@pytest.mark.parametrize(
    ("ip", "normal"),
    [
        ("10.0.0.1", "10.0.0.1"),
        ("::ffff:127.0.0.1", "127.0.0.1"),
        ("::FFFF:7f00:1", "127.0.0.1"),
        ("FE80:0:0::1", "fe80::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("[::1]", "::1"),
        ("not-an-ip", "not-an-ip"),
    ],
)
def test_normalize_client_ip(ip: str, normal: str) -> None:
    assert normalize_client_ip(ip) == normal


@pytest.mark.parametrize(
    ("host", "normal"),
    [
        ("FE80::%", "fe80::%"),
        ("FE80:0:0::1", "fe80::1"),
        ("::ffff:10.0.0.1", "10.0.0.1"),
        ("30.9.%.%", "30.9.%.%"),
        ("10.0.0.1", "10.0.0.1"),
    ],
)
def test_normalize_host_pattern(host: str, normal: str) -> None:
    assert normalize_host_pattern(host) == normal


def test_pathological_pattern_matches_in_linear_time() -> None:
    # A regex translation would backtrack exponentially on this; the matcher must not.
    pattern = "%_" * 120 + "9"
    started = time.perf_counter()
    for _ in range(100):
        assert not host_matches(pattern, "2001:db8:85a3:8d3:1319:8a2e:370:7348")
    assert time.perf_counter() - started < 2.0


# --- precedence ---


def _account(host: str, created_seq: int) -> Account:
    return Account(
        id=created_seq,
        user="david",
        host=host,
        native_hash=b"",
        password_hash="",
        owner_db="easydb",
        builtin=None,
        created_seq=created_seq,
    )


# (accounts as (host, created_seq), client ip, host of the chosen account or None)
PRECEDENCE_CASES: list[tuple[list[tuple[str, int]], str, str | None]] = [
    # The seed's example: the longer literal prefix before the first wildcard wins ...
    ([("30.9.12_.%", 1), ("30.9.1%.234", 2)], "30.9.127.234", "30.9.12_.%"),
    # ... whichever was created first.
    ([("30.9.12_.%", 2), ("30.9.1%.234", 1)], "30.9.127.234", "30.9.12_.%"),
    # Only matching accounts compete.
    ([("30.9.12_.%", 1), ("30.9.1%.234", 2)], "30.9.13.234", "30.9.1%.234"),
    ([("30.9.12_.%", 1), ("30.9.1%.234", 2)], "30.8.127.234", None),
    ([], "10.0.0.1", None),
    # An exact host beats everything, even a pattern with as long a literal prefix.
    ([("10.0.0.1%", 1), ("10.0.0.1", 2)], "10.0.0.1", "10.0.0.1"),
    ([("%", 1), ("10.0.0.1", 2)], "10.0.0.1", "10.0.0.1"),
    # Longest literal prefix.
    ([("%", 1), ("10.%", 2), ("10.0.%", 3)], "10.0.0.1", "10.0.%"),
    ([("10.0.%", 3), ("10.%", 2), ("%", 1)], "10.0.0.1", "10.0.%"),
    ([("%", 1), ("10.%", 2), ("10.0.%", 3)], "10.1.0.1", "10.%"),
    ([("%", 1), ("10.%", 2), ("10.0.%", 3)], "11.0.0.1", "%"),
    # Ties go to the account created first.
    ([("10.0.%", 2), ("10.0._.1", 1)], "10.0.0.1", "10.0._.1"),
    ([("10.0.%", 1), ("10.0._.1", 2)], "10.0.0.1", "10.0.%"),
    ([("%", 5), ("_%", 4)], "10.0.0.1", "_%"),
    # IPv4-mapped clients bind like their IPv4 form.
    ([("%", 1), ("127.0.0.1", 2)], "::ffff:127.0.0.1", "127.0.0.1"),
    ([("%", 1), ("127.0.0.%", 2)], "::ffff:127.0.0.1", "127.0.0.%"),
    # IPv6.
    ([("%", 1), ("fe80::%", 2), ("fe80::1", 3)], "fe80::1", "fe80::1"),
    ([("%", 1), ("fe80::%", 2), ("fe80::1", 3)], "fe80::2", "fe80::%"),
]


@pytest.mark.parametrize(("accounts", "ip", "expected"), PRECEDENCE_CASES)
def test_choose_account(accounts: list[tuple[str, int]], ip: str, expected: str | None) -> None:
    chosen = choose_account([_account(host, seq) for host, seq in accounts], ip)
    assert (chosen.host if chosen is not None else None) == expected
