"""Password cryptography: golden vectors, round trips, and agreement with PyMySQL's client code."""

from __future__ import annotations

import hashlib
import os
import string

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from pymysql import _auth as pymysql_auth

from auth.passwords import (
    PBKDF2_ITERATIONS,
    generate_password,
    generate_rsa_keypair,
    hash_password,
    native_hash,
    rsa_decrypt_password,
    rsa_public_pem,
    scramble_caching_sha2,
    scramble_native,
    sha2_digest,
    verify_caching_sha2_fast,
    verify_native,
    verify_password,
)

PASSWORDS = ["123456", "your#password", "p", "pässwörd€", "x" * 64, "a b\tc"]


# --- mysql_native_password ---


@pytest.mark.parametrize(
    ("password", "mysql_password_function"),
    [
        # SELECT PASSWORD('...') on MySQL 5.7
        ("123456", "*6BB4837EB74329105EE4568DDA7DC67ED2CA2AD9"),
        ("password", "*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19"),
        ("root", "*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B"),
    ],
)
def test_native_hash_golden(password: str, mysql_password_function: str) -> None:
    assert native_hash(password) == bytes.fromhex(mysql_password_function[1:])
    assert len(native_hash(password)) == 20


def test_native_hash_of_empty_password_is_empty() -> None:
    assert native_hash("") == b""


@pytest.mark.parametrize("password", PASSWORDS)
def test_scramble_native_agrees_with_pymysql(password: str) -> None:
    scramble = os.urandom(20)
    ours = scramble_native(password, scramble)
    assert ours == pymysql_auth.scramble_native_password(password.encode(), scramble)
    # A trailing NUL on the scramble (as in the handshake) changes nothing.
    assert scramble_native(password, scramble + b"\x00") == ours


@pytest.mark.parametrize("password", PASSWORDS)
def test_native_round_trip(password: str) -> None:
    stored = native_hash(password)
    scramble = os.urandom(20)
    response = scramble_native(password, scramble)
    assert verify_native(stored, scramble, response)
    assert not verify_native(stored, os.urandom(20), response)
    assert not verify_native(stored, scramble, scramble_native(password + "x", scramble))
    assert not verify_native(stored, scramble, b"")
    assert not verify_native(stored, scramble, response[:-1])
    assert not verify_native(stored, scramble, bytes(20))


def test_native_empty_password() -> None:
    scramble = os.urandom(20)
    assert scramble_native("", scramble) == b""
    assert verify_native(b"", scramble, b"")
    assert not verify_native(b"", scramble, scramble_native("x", scramble))
    assert not verify_native(native_hash("x"), scramble, b"")


# --- caching_sha2_password ---


def test_sha2_digest_golden() -> None:
    # SHA256('123456') is the well-known 8d969eef...; the digest is SHA256 of those bytes.
    stage1 = bytes.fromhex("8d969eef6ecad3c29a3a629280e686cf0c3f5d5a86aff3ca12020c923adc6c92")
    assert sha2_digest("123456") == hashlib.sha256(stage1).digest()
    assert sha2_digest("") == b""


@pytest.mark.parametrize("password", PASSWORDS)
def test_scramble_caching_sha2_agrees_with_pymysql(password: str) -> None:
    nonce = os.urandom(20)
    ours = scramble_caching_sha2(password, nonce)
    assert ours == pymysql_auth.scramble_caching_sha2(password.encode(), nonce)


@pytest.mark.parametrize("password", PASSWORDS)
def test_caching_sha2_fast_round_trip(password: str) -> None:
    digest = sha2_digest(password)
    nonce = os.urandom(20)
    response = scramble_caching_sha2(password, nonce)
    assert verify_caching_sha2_fast(digest, nonce, response)
    assert verify_caching_sha2_fast(digest, nonce + b"\x00", response)
    assert not verify_caching_sha2_fast(digest, os.urandom(20), response)
    assert not verify_caching_sha2_fast(digest, nonce, scramble_caching_sha2("nope", nonce))
    assert not verify_caching_sha2_fast(digest, nonce, b"")
    assert not verify_caching_sha2_fast(digest, nonce, response[:-1])


def test_caching_sha2_empty_password() -> None:
    nonce = os.urandom(20)
    assert scramble_caching_sha2("", nonce) == b""
    assert verify_caching_sha2_fast(b"", nonce, b"")
    assert not verify_caching_sha2_fast(b"", nonce, scramble_caching_sha2("x", nonce))


# --- the stored slow hash ---


def test_hash_password_format() -> None:
    stored = hash_password("your#password")
    prefix, iterations, salt, derived = stored.split("$")
    assert prefix == "pbkdf2_sha256"
    assert int(iterations) == PBKDF2_ITERATIONS
    assert len(salt) == 24  # 16 bytes, base64
    assert len(derived) == 44  # 32 bytes, base64
    assert "your#password" not in stored


def test_hash_password_golden() -> None:
    # Recompute the stored value with hashlib directly from its own salt.
    import base64

    stored = hash_password("123456", iterations=1000)
    _, iterations, salt, derived = stored.split("$")
    expected = hashlib.pbkdf2_hmac("sha256", b"123456", base64.b64decode(salt), 1000)
    assert base64.b64decode(derived) == expected
    assert iterations == "1000"


@pytest.mark.parametrize("password", PASSWORDS)
def test_password_round_trip(password: str) -> None:
    stored = hash_password(password, iterations=1000)
    assert verify_password(stored, password)
    assert not verify_password(stored, password + "x")
    assert not verify_password(stored, "")


def test_salts_differ() -> None:
    assert hash_password("same", iterations=1000) != hash_password("same", iterations=1000)


def test_empty_password_hash() -> None:
    assert hash_password("") == ""
    assert verify_password("", "")
    assert not verify_password("", "x")


@pytest.mark.parametrize(
    "stored",
    [
        "garbage",
        "pbkdf2_sha256$1000$abc",
        "pbkdf2_sha1$1000$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "pbkdf2_sha256$x$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "pbkdf2_sha256$0$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "pbkdf2_sha256$99999999999$AAAAAAAAAAAAAAAAAAAAAA==$AAAA",
        "pbkdf2_sha256$1000$not base64!$AAAA",
    ],
)
def test_malformed_stored_hash_matches_nothing(stored: str) -> None:
    assert not verify_password(stored, "")
    assert not verify_password(stored, "garbage")


def test_tampered_hash_fails() -> None:
    stored = hash_password("secret", iterations=1000)
    prefix, iterations, salt, derived = stored.split("$")
    assert not verify_password(f"{prefix}${int(iterations) + 1}${salt}${derived}", "secret")


# --- RSA (caching_sha2 full authentication without TLS) ---


@pytest.fixture(scope="module")
def keypair() -> tuple[bytes, bytes]:
    return generate_rsa_keypair()


def _client_encrypt(password: str, nonce: bytes, public_pem: bytes) -> bytes:
    """The client side, written out as PyMySQL's sha2_rsa_encrypt does it."""
    message = bytearray(password.encode("utf-8") + b"\x00")
    salt = nonce[:20]
    for i in range(len(message)):
        message[i] ^= salt[i % len(salt)]
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    return key.encrypt(
        bytes(message),
        padding.OAEP(
            mgf=padding.MGF1(algorithm=hashes.SHA1()), algorithm=hashes.SHA1(), label=None
        ),
    )


def test_keypair_shape(keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")
    assert public_pem.startswith(b"-----BEGIN PUBLIC KEY-----")
    key = serialization.load_pem_public_key(public_pem)
    assert isinstance(key, rsa.RSAPublicKey)
    assert key.key_size == 2048
    assert rsa_public_pem(private_pem) == public_pem


@pytest.mark.parametrize("password", [*PASSWORDS, ""])
def test_rsa_round_trip(keypair: tuple[bytes, bytes], password: str) -> None:
    private_pem, public_pem = keypair
    nonce = os.urandom(20)
    encrypted = _client_encrypt(password, nonce, public_pem)
    assert rsa_decrypt_password(private_pem, encrypted, nonce) == password
    # The same with a nonce carrying the handshake's trailing NUL.
    assert rsa_decrypt_password(private_pem, encrypted, nonce + b"\x00") == password


@pytest.mark.parametrize("password", ["123456", "pässwörd€", "y" * 30])
def test_rsa_agrees_with_pymysql(keypair: tuple[bytes, bytes], password: str) -> None:
    private_pem, public_pem = keypair
    nonce = os.urandom(20)
    encrypted = pymysql_auth.sha2_rsa_encrypt(password.encode(), nonce, public_pem)
    assert rsa_decrypt_password(private_pem, encrypted, nonce) == password


def test_rsa_wrong_nonce_or_key_fails(keypair: tuple[bytes, bytes]) -> None:
    private_pem, public_pem = keypair
    nonce = os.urandom(20)
    encrypted = _client_encrypt("secret", nonce, public_pem)
    other_nonce = bytes(b ^ 0xFF for b in nonce)
    # With the wrong nonce the NUL terminator does not come out (or the text is not UTF-8).
    with pytest.raises(ValueError):
        rsa_decrypt_password(private_pem, encrypted, other_nonce)
    other_private, _ = generate_rsa_keypair()
    with pytest.raises(ValueError):
        rsa_decrypt_password(other_private, encrypted, nonce)
    with pytest.raises(ValueError):
        rsa_decrypt_password(private_pem, b"not a ciphertext", nonce)


# --- generated passwords ---


def test_generate_password_length_and_alphabet() -> None:
    alphabet = string.ascii_letters + string.digits + "@#$%^&+="
    for length in (3, 4, 20, 64):
        for _ in range(50):
            password = generate_password(length, alphabet)
            assert len(password) == length
            assert set(password) <= set(alphabet)
            assert any(c.islower() for c in password)
            assert any(c.isupper() for c in password)
            assert any(c.isdigit() for c in password)


def test_generate_password_short_and_invalid() -> None:
    assert generate_password(0, "ab") == ""
    assert len(generate_password(2, "ab")) == 2
    with pytest.raises(ValueError):
        generate_password(-1, "ab")
    with pytest.raises(ValueError):
        generate_password(5, "")
    with pytest.raises(ValueError):
        generate_password(5, string.ascii_letters)  # no digits: the guarantee cannot hold


def test_generated_passwords_differ() -> None:
    alphabet = string.ascii_letters + string.digits
    assert len({generate_password(20, alphabet) for _ in range(100)}) == 100
