"""Client authentication plugins as small state machines.

Each plugin is a generator: it yields the packets to send to the client (with whether a reply
is expected), receives the client's replies, and returns the final verdict -- or, when the
verdict needs slow crypto (RSA decryption, PBKDF2), the check that decides it, which the driver
(``proxy.session.login``) runs off the event loop. The crypto lives in ``auth.passwords`` as pure
functions; the driver owns all I/O.

What a plugin sends depends only on the client's messages, never on the account: an unknown
user is run against a decoy account (``AuthContext.decoy``) through the same code, and every
check does the same work whatever the account holds (see ``native_password`` and
``_full_check``), so neither the exchange nor its cost tells whether an account exists.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from functools import partial
from typing import Protocol

from auth.model import Account
from auth.passwords import (
    rsa_decrypt_password,
    sha2_digest,
    verify_caching_sha2_fast,
    verify_native,
    verify_password,
)
from proxy.wire.packets import build_auth_more_data

NATIVE = "mysql_native_password"
CACHING_SHA2 = "caching_sha2_password"
SUPPORTED_PLUGINS = (NATIVE, CACHING_SHA2)

FAST_AUTH_SUCCESS = 0x03
PERFORM_FULL_AUTHENTICATION = 0x04
REQUEST_PUBLIC_KEY = 0x02
# Checked in place of a cached digest that is not there (a random one: it proves nothing).
_SPARE_DIGEST = os.urandom(32)


@dataclass(frozen=True, slots=True)
class Send:
    """A packet for the client; ``reply`` says whether the plugin waits for an answer."""

    payload: bytes
    reply: bool


# A check too slow for the event loop; True when the password is proven.
SlowCheck = Callable[[], bool]
# A plugin run: yields Send, is sent the client's reply (or b"" when none was awaited),
# returns True when the password is proven (or the SlowCheck that decides it).
PluginRun = Generator[Send, bytes, bool | SlowCheck]


class Sha2Cache:
    """The caching_sha2 fast-path cache: SHA256(SHA256(password)) per account, in memory only.

    Keyed by account id and stored password hash, so a password change invalidates the entry.
    An account with a retained (secondary) password has an entry per password.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[int, str], bytes] = {}

    def digests(self, account: Account) -> list[bytes]:
        """The cached digests of the account's passwords (primary, then a retained one)."""
        found = []
        for stored in _password_hashes(account):
            digest = self._entries.get((account.id, stored))
            if digest is not None:
                found.append(digest)
        return found

    def put(self, account: Account, password: str, stored: str) -> None:
        """Cache ``password``, which matched ``stored`` (the primary's or the retained hash).

        Called from the login crypto threads: one dict assignment, atomic under the GIL."""
        self._entries[(account.id, stored)] = sha2_digest(password)


def _password_hashes(account: Account) -> tuple[str, ...]:
    """The slow hashes a login may match: the primary, then a retained secondary."""
    if account.retained_password_hash is not None:
        return (account.password_hash, account.retained_password_hash)
    return (account.password_hash,)


class Keys(Protocol):
    """The server's RSA key pair for caching_sha2 full authentication without TLS."""

    @property
    def private_pem(self) -> bytes: ...
    @property
    def public_pem(self) -> bytes: ...


@dataclass
class AuthContext:
    scramble: bytes
    tls: bool
    keys: Keys
    # The account an unknown user is checked against; its hashes (random, of no password
    # anyone knows) also stand in for a missing secondary password, so every check costs the
    # same whatever the account has.
    decoy: Account
    sha2_cache: Sha2Cache = field(default_factory=Sha2Cache)


def run_plugin(plugin: str, account: Account, first_response: bytes, ctx: AuthContext) -> PluginRun:
    if plugin == NATIVE:
        return native_password(account, first_response, ctx)
    if plugin == CACHING_SHA2:
        return caching_sha2_password(account, first_response, ctx)
    raise ValueError(plugin)


def native_password(account: Account, response: bytes, ctx: AuthContext) -> PluginRun:
    # Either password while a retained one exists (SET PASSWORD ... RETAIN CURRENT PASSWORD).
    # Both checks always run, so the work does not tell whether the account exists, has a
    # password or has a retained one.
    nonce = ctx.scramble[:20]
    spare = ctx.decoy.native_hash
    primary_ok = _native_check(account.native_hash, nonce, response, spare)
    retained_ok = _native_check(account.retained_native_hash, nonce, response, spare)
    return primary_ok or retained_ok
    yield  # pragma: no cover - makes this a generator


def _native_check(stored: bytes | None, nonce: bytes, response: bytes, spare: bytes) -> bool:
    """verify_native at the cost of one check whatever ``stored`` is: a missing (None) or empty
    stored hash is decided without one, so the spare hash is checked instead, its answer
    dropped."""
    if stored:
        return verify_native(stored, nonce, response)
    verify_native(spare, nonce, response)
    return stored == b"" and response == b""


def caching_sha2_password(account: Account, response: bytes, ctx: AuthContext) -> PluginRun:
    if response in (b"", b"\x00"):
        # Only an account without a password accepts an empty scramble.
        return not account.password_hash
    # Always two fast checks (the primary's and the retained password's cached digests, a
    # spare for each one missing), so the time does not tell what is cached.
    digests = ctx.sha2_cache.digests(account)
    digests += [_SPARE_DIGEST] * (2 - len(digests))
    if any([verify_caching_sha2_fast(d, ctx.scramble[:20], response) for d in digests]):
        yield Send(build_auth_more_data(bytes([FAST_AUTH_SUCCESS])), reply=False)
        return True
    # Nothing cached, or a scramble no cached digest proves: full authentication, as MySQL
    # does in both cases (a wrong password with a cached digest must look like a cache miss).
    reply = yield Send(build_auth_more_data(bytes([PERFORM_FULL_AUTHENTICATION])), reply=True)
    if ctx.tls:
        password = reply.rstrip(b"\x00").decode("utf-8", "replace")
        return partial(_full_check, account, password, ctx)
    if reply != bytes([REQUEST_PUBLIC_KEY]):
        # A cleartext password over an insecure channel is never accepted.
        return False
    encrypted = yield Send(build_auth_more_data(ctx.keys.public_pem), reply=True)
    return partial(_rsa_check, account, encrypted, ctx)


def _rsa_check(account: Account, encrypted: bytes, ctx: AuthContext) -> bool:
    """Full authentication without TLS: the RSA-encrypted password, decrypted here."""
    try:
        password = rsa_decrypt_password(ctx.keys.private_pem, encrypted, ctx.scramble[:20])
    except ValueError:
        return False
    return _full_check(account, password, ctx)


def _full_check(account: Account, password: str, ctx: AuthContext) -> bool:
    """The password against the primary and the secondary slow hash, caching the match.

    Always two PBKDF2 derivations (see ``_password_check``), whatever the account has.
    """
    accepted = False
    for stored in (account.password_hash, account.retained_password_hash):
        matched = _password_check(stored, password, ctx.decoy.password_hash)
        if matched and stored is not None and not accepted:
            ctx.sha2_cache.put(account, password, stored)
            accepted = True
    return accepted


def _password_check(stored: str | None, password: str, spare: str) -> bool:
    """verify_password at the cost of one derivation whatever ``stored`` is: a missing (None)
    or empty stored hash is decided without one, so the spare hash is derived instead, its
    answer dropped."""
    if stored:
        return verify_password(stored, password)
    verify_password(spare, password)
    return stored == "" and password == ""
