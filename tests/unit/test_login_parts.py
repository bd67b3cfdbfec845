"""The login path's pure parts and plugins (proxy/session/login.py, proxy/session/authn.py): the
plugin choice, the decoy account, the per-address throttle, the crypto pool, and that the
plugins' exchange and work do not depend on the account. The wire-level behaviour is tested
end to end in tests/e2e/test_login.py and test_protections.py."""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections.abc import Callable
from dataclasses import replace

import pytest

from auth.model import Account
from auth.passwords import (
    PBKDF2_ITERATIONS,
    generate_rsa_keypair,
    hash_password,
    native_hash,
    scramble_caching_sha2,
    scramble_native,
)
from proxy.ops.config import ServerConfig
from proxy.session.authn import (
    CACHING_SHA2,
    NATIVE,
    AuthContext,
    PluginRun,
    Sha2Cache,
    run_plugin,
)
from proxy.session.login import (
    AddressThrottle,
    LoginGuard,
    address_key,
    choose_plugin,
    decoy_account,
    make_scramble,
)
from proxy.wire.packets import build_auth_more_data

PASSWORD = "Right#pass1"
OTHER = "Older#pass1"


class Keys:
    def __init__(self) -> None:
        self.private_pem, self.public_pem = generate_rsa_keypair()


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


@pytest.fixture(scope="module")
def decoy() -> Account:
    return decoy_account()


def _account(password: str = PASSWORD, retained: str | None = None, account_id: int = 7) -> Account:
    return Account(
        id=account_id,
        user="app",
        host="%",
        native_hash=native_hash(password),
        password_hash=hash_password(password),
        owner_db="db",
        builtin=None,
        created_seq=account_id,
        retained_native_hash=None if retained is None else native_hash(retained),
        retained_password_hash=None if retained is None else hash_password(retained),
    )


@pytest.fixture(scope="module")
def account() -> Account:
    return _account()


def _context(keys: Keys, decoy: Account, tls: bool, cache: Sha2Cache | None = None) -> AuthContext:
    return AuthContext(
        scramble=make_scramble(),
        tls=tls,
        keys=keys,
        decoy=decoy,
        sha2_cache=cache if cache is not None else Sha2Cache(),
    )


def _drive(run: PluginRun, replies: list[bytes]) -> tuple[list[bytes], bool | Callable[[], bool]]:
    """Run a plugin, answering each packet that awaits a reply with the next of ``replies``:
    the packets it sent and its verdict (a bool, or the slow check deciding it)."""
    sent: list[bytes] = []
    answers = iter(replies)
    try:
        step = next(run)
        while True:
            sent.append(step.payload)
            step = run.send(next(answers) if step.reply else b"")
    except StopIteration as done:
        return sent, done.value


# -- the plugin choice -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("requested", "server", "tls", "expected"),
    [
        (NATIVE, NATIVE, False, (NATIVE, False)),
        (NATIVE, CACHING_SHA2, False, (NATIVE, False)),
        (CACHING_SHA2, CACHING_SHA2, False, (CACHING_SHA2, False)),
        (CACHING_SHA2, CACHING_SHA2, True, (CACHING_SHA2, False)),
        (CACHING_SHA2, NATIVE, True, (CACHING_SHA2, False)),
        # No TLS and a server proposing native: always native, cached digest or not.
        (CACHING_SHA2, NATIVE, False, (NATIVE, True)),
        ("sha256_password", NATIVE, False, (NATIVE, True)),
        ("dialog", CACHING_SHA2, True, (CACHING_SHA2, True)),
    ],
)
def test_the_plugin_comes_from_the_request_and_the_configuration(
    requested: str, server: str, tls: bool, expected: tuple[str, bool]
) -> None:
    assert choose_plugin(requested, server, tls) == expected


def test_scramble_is_twenty_printable_bytes() -> None:
    scrambles = {make_scramble() for _ in range(50)}
    assert len(scrambles) == 50
    for scramble in scrambles:
        assert len(scramble) == 20 and all(33 <= b <= 126 for b in scramble)


def test_the_decoy_has_real_random_hashes_and_is_never_locked() -> None:
    first, second = decoy_account(), decoy_account()
    assert first.id < 0 and first.host == "%" and not first.locked_at(time.time())
    assert first.password_hash.startswith(f"pbkdf2_sha256${PBKDF2_ITERATIONS}$")
    assert len(first.native_hash) == 20
    assert first.password_hash != second.password_hash
    assert first.native_hash != second.native_hash


# -- plugins: the same exchange and work whatever the account ---------------------------------


def test_native_proves_either_password_and_nothing_for_the_decoy(
    keys: Keys, decoy: Account
) -> None:
    rotating = _account(PASSWORD, retained=OTHER)
    for candidate, password, expected in (
        (rotating, PASSWORD, True),
        (rotating, OTHER, True),
        (rotating, "Wrong#pass1", False),
        (_account(), OTHER, False),
        (decoy, PASSWORD, False),
    ):
        context = _context(keys, decoy, tls=False)
        response = scramble_native(password, context.scramble)
        assert _drive(run_plugin(NATIVE, candidate, response, context), []) == ([], expected)


def test_caching_sha2_wrong_password_with_a_cached_digest_looks_like_a_cache_miss(
    keys: Keys, decoy: Account, account: Account
) -> None:
    cache = Sha2Cache()
    cache.put(account, PASSWORD, account.password_hash)
    context = _context(keys, decoy, tls=True, cache=cache)
    right = scramble_caching_sha2(PASSWORD, context.scramble)
    assert _drive(run_plugin(CACHING_SHA2, account, right, context), []) == (
        [build_auth_more_data(b"\x03")],
        True,
    )
    wrong = scramble_caching_sha2("Wrong#pass1", context.scramble)
    full = [build_auth_more_data(b"\x04")]
    for candidate in (account, decoy):
        sent, verdict = _drive(run_plugin(CACHING_SHA2, candidate, wrong, context), [b"Wrong\0"])
        assert sent == full and callable(verdict) and verdict() is False


@pytest.mark.parametrize("tls", [True, False])
def test_caching_sha2_full_authentication_sends_the_same_whatever_the_account(
    keys: Keys, decoy: Account, tls: bool
) -> None:
    from pymysql import _auth as pymysql_auth

    passwordless = replace(_account(), native_hash=b"", password_hash="")
    for password in (PASSWORD, "Wrong#pass1"):
        exchanges = []
        for candidate in (_account(), _account(PASSWORD, retained=OTHER), passwordless, decoy):
            context = _context(keys, decoy, tls)
            first = scramble_caching_sha2(password, context.scramble)
            if tls:
                replies = [password.encode() + b"\0"]
            else:
                encrypted = pymysql_auth.sha2_rsa_encrypt(
                    password.encode(), context.scramble, keys.public_pem
                )
                replies = [b"\x02", encrypted]
            sent, verdict = _drive(run_plugin(CACHING_SHA2, candidate, first, context), replies)
            # Decided off the event loop, for every account alike.
            assert callable(verdict)
            exchanges.append(sent)
            expected = password == PASSWORD and candidate.password_hash != "" and candidate.id > 0
            assert verdict() is expected
            if expected:  # now cached: the fast path
                context.scramble = make_scramble()
                again = scramble_caching_sha2(password, context.scramble)
                assert _drive(run_plugin(CACHING_SHA2, candidate, again, context), [])[1] is True
        assert all(sent == exchanges[-1] for sent in exchanges)


def test_an_empty_scramble_is_decided_at_once(keys: Keys, decoy: Account) -> None:
    passwordless = replace(_account(), native_hash=b"", password_hash="")
    for candidate, expected in ((passwordless, True), (_account(), False), (decoy, False)):
        context = _context(keys, decoy, tls=False)
        for empty in (b"", b"\x00"):
            assert _drive(run_plugin(CACHING_SHA2, candidate, empty, context), []) == (
                [],
                expected,
            )


def test_full_authentication_costs_two_derivations_whatever_the_account(
    keys: Keys, decoy: Account, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A missing secondary password or an empty one costs a derivation of the decoy's hash, so
    a wrong password takes as long against any account as against the decoy: the same key
    derivations, iterations included, counted (not timed)."""
    accounts = {
        "plain": _account(),
        "retained": _account(PASSWORD, retained=OTHER),
        "passwordless": replace(_account(), native_hash=b"", password_hash=""),
        "decoy": decoy,
    }
    derive = hashlib.pbkdf2_hmac
    derivations: list[tuple[str, int]] = []

    def counted(name: str, password: bytes, salt: bytes, iterations: int) -> bytes:
        derivations.append((name, iterations))
        return derive(name, password, salt, iterations)

    monkeypatch.setattr(hashlib, "pbkdf2_hmac", counted)
    costs: dict[str, list[tuple[str, int]]] = {}
    for name, candidate in accounts.items():
        context = _context(keys, decoy, tls=True)
        first = scramble_caching_sha2("Wrong#pass1", context.scramble)
        _, verdict = _drive(run_plugin(CACHING_SHA2, candidate, first, context), [b"Wrong\0"])
        assert callable(verdict)
        derivations.clear()
        assert verdict() is False
        costs[name] = list(derivations)
    assert len(costs["decoy"]) == 2, costs
    for name, cost in costs.items():
        assert cost == costs["decoy"], (name, costs)


def test_slow_checks_run_in_worker_threads_a_bounded_number_at_once() -> None:
    guard = LoginGuard(crypto_threads=2)
    lock = threading.Lock()
    running = 0
    most = 0
    threads: set[int] = set()

    def check() -> bool:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            threads.add(threading.get_ident())
        time.sleep(0.05)
        with lock:
            running -= 1
        return True

    async def main() -> list[bool]:
        return await asyncio.gather(*(guard.offload(check) for _ in range(6)))

    assert asyncio.run(main()) == [True] * 6
    assert most == 2
    assert threading.get_ident() not in threads


# -- the per-address throttle -------------------------------------------------------------------

SETTINGS = ServerConfig(
    login_throttle_failures=3,
    login_throttle_window=10.0,
    login_throttle_delay=1.0,
    login_throttle_max_delay=2.5,
)


def test_the_throttle_delays_an_address_after_n_failures_growing_and_capped() -> None:
    throttle = AddressThrottle()
    now = 100.0
    for _ in range(3):
        assert throttle.delay("192.0.2.1", now, SETTINGS) == 0.0
        throttle.failed("192.0.2.1", now, SETTINGS)
        now += 1
    delays = []
    for _ in range(4):
        delays.append(throttle.delay("192.0.2.1", now, SETTINGS))
        throttle.failed("192.0.2.1", now, SETTINGS)
        now += 1
    assert delays == [1.0, 2.0, 2.5, 2.5]
    # Another address is not affected.
    assert throttle.delay("192.0.2.2", now, SETTINGS) == 0.0


def test_the_throttle_forgets_an_address_after_a_quiet_window() -> None:
    throttle = AddressThrottle()
    for second in range(3):
        throttle.failed("192.0.2.1", float(second), SETTINGS)
    assert throttle.delay("192.0.2.1", 12.0, SETTINGS) == 1.0  # 10 s after the last failure
    assert throttle.delay("192.0.2.1", 12.5, SETTINGS) == 0.0
    assert len(throttle) == 0
    # Failures further apart than the window never add up.
    for second in range(0, 100, 11):
        assert throttle.delay("192.0.2.1", float(second), SETTINGS) == 0.0
        throttle.failed("192.0.2.1", float(second), SETTINGS)


def test_the_throttle_counts_an_ipv6_client_by_its_64() -> None:
    assert address_key("2001:db8:1:2:aaaa::1") == "2001:db8:1:2::/64"
    assert address_key("fe80::1%eth0") == "fe80::/64"
    assert address_key("192.0.2.1") == "192.0.2.1"
    throttle = AddressThrottle()
    for index in range(3):
        throttle.failed(f"2001:db8:1:2::{index + 1}", 0.0, SETTINGS)
    assert throttle.delay("2001:db8:1:2:ffff::9", 1.0, SETTINGS) == 1.0
    assert throttle.delay("2001:db8:1:3::1", 1.0, SETTINGS) == 0.0


def test_the_throttle_keeps_a_bounded_number_of_addresses() -> None:
    throttle = AddressThrottle(capacity=3)
    for index in range(5):
        for _ in range(3):
            throttle.failed(f"192.0.2.{index}", float(index), SETTINGS)
    assert len(throttle) == 3
    # The addresses whose last failure is oldest went first.
    assert throttle.delay("192.0.2.0", 5.0, SETTINGS) == 0.0
    assert throttle.delay("192.0.2.4", 5.0, SETTINGS) == 1.0


def test_the_throttle_off_keeps_nothing() -> None:
    off = replace(SETTINGS, login_throttle_failures=0)
    throttle = AddressThrottle()
    for _ in range(10):
        throttle.failed("192.0.2.1", 0.0, off)
    assert len(throttle) == 0 and throttle.delay("192.0.2.1", 0.0, off) == 0.0
