"""Password cryptography for the MySQL authentication plugins, as pure functions.

In the style of PyMySQL's ``_auth.py``: the client computations (used by tests and by the
proxy's own backend logins) next to the server-side checks. Passwords are text, encoded as
UTF-8. The empty password is special throughout: its stored forms are empty and it is proven
only by an empty response, as MySQL does.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
import string
from functools import lru_cache

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

# The server's nonce ("scramble") is 20 bytes; longer input (a trailing NUL) is cut to that.
SCRAMBLE_LENGTH = 20
PBKDF2_ITERATIONS = 50_000
PBKDF2_PREFIX = "pbkdf2_sha256"
RSA_KEY_BITS = 2048
_SALT_BYTES = 16
# Refuse stored hashes claiming absurd work factors (a corrupted row must not stall logins).
_MAX_ITERATIONS = 10_000_000

_OAEP_SHA1 = padding.OAEP(
    mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
)


def _sha1(data: bytes) -> bytes:
    return hashlib.sha1(data).digest()


def _sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def _xor(left: bytes, right: bytes) -> bytes:
    return bytes(a ^ b for a, b in zip(left, right, strict=True))


# --- mysql_native_password ---


def native_hash(password: str) -> bytes:
    """SHA1(SHA1(password)): MySQL's ``PASSWORD()`` value without the ``*``; b"" if empty."""
    if not password:
        return b""
    return _sha1(_sha1(password.encode("utf-8")))


def scramble_native(password: str, scramble: bytes) -> bytes:
    """The client's response: SHA1(pw) XOR SHA1(scramble + SHA1(SHA1(pw))); b"" if empty."""
    if not password:
        return b""
    stage1 = _sha1(password.encode("utf-8"))
    stage2 = _sha1(stage1)
    return _xor(stage1, _sha1(scramble[:SCRAMBLE_LENGTH] + stage2))


def verify_native(stored: bytes, scramble: bytes, response: bytes) -> bool:
    """Check a native response against the stored SHA1(SHA1(pw)) (constant time).

    An empty stored hash (no password) accepts only an empty response.
    """
    if not stored:
        return response == b""
    if len(stored) != 20 or len(response) != 20:
        return False
    candidate_stage1 = _xor(response, _sha1(scramble[:SCRAMBLE_LENGTH] + stored))
    return hmac.compare_digest(_sha1(candidate_stage1), stored)


# --- caching_sha2_password ---


def sha2_digest(password: str) -> bytes:
    """SHA256(SHA256(password)): the fast-path cache entry (memory only); b"" if empty."""
    if not password:
        return b""
    return _sha256(_sha256(password.encode("utf-8")))


def scramble_caching_sha2(password: str, nonce: bytes) -> bytes:
    """The client's fast-path response: XOR(SHA256(pw), SHA256(SHA256(SHA256(pw)) + nonce))."""
    if not password:
        return b""
    stage1 = _sha256(password.encode("utf-8"))
    return _xor(stage1, _sha256(_sha256(stage1) + nonce[:SCRAMBLE_LENGTH]))


def verify_caching_sha2_fast(digest: bytes, nonce: bytes, response: bytes) -> bool:
    """Check a fast-path response against the cached SHA256(SHA256(pw)) (constant time).

    candidate SHA256(pw) = response XOR SHA256(digest + nonce); it must hash to ``digest``.
    An empty digest (no password) accepts only an empty response.
    """
    if not digest:
        return response == b""
    if len(digest) != 32 or len(response) != 32:
        return False
    candidate = _xor(response, _sha256(digest + nonce[:SCRAMBLE_LENGTH]))
    return hmac.compare_digest(_sha256(candidate), digest)


# --- The stored slow hash (full authentication, dashboard) ---


def _b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt b64>$<hash b64>`` with a fresh 16-byte salt; "" for
    the empty password."""
    if not password:
        return ""
    if not 1 <= iterations <= _MAX_ITERATIONS:
        raise ValueError(f"iterations must be between 1 and {_MAX_ITERATIONS}")
    salt = secrets.token_bytes(_SALT_BYTES)
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return f"{PBKDF2_PREFIX}${iterations}${_b64encode(salt)}${_b64encode(derived)}"


def verify_password(stored: str, password: str) -> bool:
    """Whether ``password`` is the one ``stored`` was made from (constant time).

    An empty stored string matches only the empty password; a malformed one matches nothing.
    """
    if not stored:
        return password == ""
    parts = stored.split("$")
    if len(parts) != 4 or parts[0] != PBKDF2_PREFIX or not parts[1].isdecimal():
        return False
    iterations = int(parts[1])
    if not 1 <= iterations <= _MAX_ITERATIONS:
        return False
    try:
        salt = base64.b64decode(parts[2], validate=True)
        expected = base64.b64decode(parts[3], validate=True)
    except (binascii.Error, ValueError):
        return False
    derived = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, iterations)
    return hmac.compare_digest(derived, expected)


# --- RSA, for caching_sha2 full authentication without TLS ---


def generate_rsa_keypair() -> tuple[bytes, bytes]:
    """A fresh 2048-bit key pair: (private key PEM (PKCS#8), public key PEM (SPKI)).

    The public PEM (``-----BEGIN PUBLIC KEY-----``) is what MySQL clients expect.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return private_pem, _public_pem(key)


def _public_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@lru_cache(maxsize=8)
def _load_private_key(private_pem: bytes) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(private_pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return key


def rsa_public_pem(private_pem: bytes) -> bytes:
    """The public key PEM (SPKI) of a private key PEM, e.g. one loaded from a file."""
    return _public_pem(_load_private_key(private_pem))


def rsa_decrypt_password(private_pem: bytes, encrypted: bytes, nonce: bytes) -> str:
    """Recover the password a client sent RSA-encrypted (caching_sha2 / sha256 full auth).

    RSA-OAEP (SHA1) decrypt, XOR with the 20-byte nonce repeated, then drop the NUL terminator
    the client appends. Raises ValueError if anything about it is wrong.
    """
    key = _load_private_key(private_pem)
    try:
        plain = key.decrypt(encrypted, _OAEP_SHA1)
    except ValueError as exc:
        raise ValueError("cannot decrypt the password") from exc
    salt = nonce[:SCRAMBLE_LENGTH]
    if not salt:
        raise ValueError("empty nonce")
    clear = bytes(byte ^ salt[i % len(salt)] for i, byte in enumerate(plain))
    if not clear.endswith(b"\x00"):
        raise ValueError("the decrypted password is not NUL-terminated")
    return clear[:-1].decode("utf-8")


# --- Generated passwords ---


def generate_password(length: int, alphabet: str) -> str:
    """A random password drawn uniformly with ``secrets`` from ``alphabet``.

    When ``length >= 3`` it holds at least one lowercase letter, one uppercase letter and one
    digit (drawn again until it does, so the result stays uniform over such passwords); the
    alphabet must then contain all three kinds.
    """
    if length < 0:
        raise ValueError("length must not be negative")
    if not alphabet:
        raise ValueError("empty alphabet")
    kinds: tuple[str, ...] = ()
    if length >= 3:
        kinds = (string.ascii_lowercase, string.ascii_uppercase, string.digits)
        for kind in kinds:
            if not any(c in kind for c in alphabet):
                raise ValueError(
                    "the alphabet needs lowercase letters, uppercase letters and digits"
                )
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if all(any(c in kind for c in password) for kind in kinds):
            return password
