"""Naming and password rules of the two policy profiles."""

from __future__ import annotations

import pytest

from auth.errors import SqlError
from auth.policy import DEFAULT_PROFILE, MANAGED, POLARDBX, PolicyProfile, profile_by_name

POLARDBX_USERNAME_ERROR = (
    "ERR-CODE: [TDDL-5202][ERR_INVALID_USERNAME] Invalid username. Username requirements: "
    "1. Must be 4-20 characters; 2. Must start with an alphabetic letter; 3. Characters are "
    "limited to uppercase and lowercase letters, and numerical digits."
)
POLARDBX_PASSWORD_ERROR = (
    "ERR-CODE: [TDDL-5203][ERR_INVALID_PASSWORD] Invalid password. Password requirements: "
    "1. Must be 6-20 characters; 2. Characters are limited to uppercase and lowercase "
    "alphabetic letters, numerical digits, and special characters(@#$%^&+=)."
)


def _username_error(profile: PolicyProfile, user: str) -> SqlError | None:
    try:
        profile.validate_username(user)
    except SqlError as error:
        return error
    return None


def _password_error(profile: PolicyProfile, password: str) -> SqlError | None:
    try:
        profile.validate_password(password)
    except SqlError as error:
        return error
    return None


# --- polardbx ---

POLARDBX_GOOD_USERS = ["lily", "david", "hanson", "actro", "Abcd", "a123", "A" * 20, "easydb"]
POLARDBX_BAD_USERS = [
    "abc",  # too short
    "a" * 21,  # too long
    "1abc",  # starts with a digit
    "_abc",
    "new_user",  # underscore
    "ab-cd",
    "ab cd",
    "abcd\n",  # a trailing newline must not slip through
    "Ängström",  # letters means ASCII letters
    "",
]


@pytest.mark.parametrize("user", POLARDBX_GOOD_USERS)
def test_polardbx_good_usernames(user: str) -> None:
    POLARDBX.validate_username(user)


@pytest.mark.parametrize("user", POLARDBX_BAD_USERS)
def test_polardbx_bad_usernames(user: str) -> None:
    error = _username_error(POLARDBX, user)
    assert error is not None
    assert (error.errno, error.sqlstate, error.message) == (5202, "HY000", POLARDBX_USERNAME_ERROR)


POLARDBX_GOOD_PASSWORDS = ["123456", "your#password", "Aa1@#$%^&+=", "x" * 20, "======"]
POLARDBX_BAD_PASSWORDS = [
    "12345",  # too short
    "x" * 21,  # too long
    "has space",
    "quote'd12",
    "bang!bang",
    "pässwörd",
    "secret\n",
    "",
]


@pytest.mark.parametrize("password", POLARDBX_GOOD_PASSWORDS)
def test_polardbx_good_passwords(password: str) -> None:
    POLARDBX.validate_password(password)


@pytest.mark.parametrize("password", POLARDBX_BAD_PASSWORDS)
def test_polardbx_bad_passwords(password: str) -> None:
    error = _password_error(POLARDBX, password)
    assert error is not None
    assert (error.errno, error.sqlstate, error.message) == (5203, "HY000", POLARDBX_PASSWORD_ERROR)


# --- managed ---

MANAGED_GOOD_USERS = ["my_app", "my_app_4553_rw", "A" * 32, "abc_12", "a_____"]
MANAGED_BAD_USERS = ["short", "a" * 33, "_my_app", "1my_app", "my-app", "my app", "my_app\n", ""]


@pytest.mark.parametrize("user", MANAGED_GOOD_USERS)
def test_managed_good_usernames(user: str) -> None:
    MANAGED.validate_username(user)


@pytest.mark.parametrize("user", MANAGED_BAD_USERS)
def test_managed_bad_usernames(user: str) -> None:
    error = _username_error(MANAGED, user)
    assert error is not None
    assert (error.errno, error.sqlstate) == (5202, "HY000")
    assert error.message.startswith("ERR-CODE: [TDDL-5202][ERR_INVALID_USERNAME] Invalid username.")
    for rule in ("6-32 characters", "start with an alphabetic letter", "underscore"):
        assert rule in error.message


MANAGED_GOOD_PASSWORDS = [
    "YANs3y07m5_KJC2MSDGebh8tx1lliFWh2Yb239zVqGQvbElWDjIN7QWspVH92Ul8",  # the seed's example
    "x" * 24,
    "x" * 64,
    "spaces and !symbols? are fine here",
]
MANAGED_BAD_PASSWORDS = ["x" * 23, "x" * 65, "x" * 23 + '"', "x" * 23 + "'", "123456", ""]


@pytest.mark.parametrize("password", MANAGED_GOOD_PASSWORDS)
def test_managed_good_passwords(password: str) -> None:
    MANAGED.validate_password(password)


@pytest.mark.parametrize("password", MANAGED_BAD_PASSWORDS)
def test_managed_bad_passwords(password: str) -> None:
    error = _password_error(MANAGED, password)
    assert error is not None
    assert (error.errno, error.sqlstate) == (5203, "HY000")
    assert error.message.startswith("ERR-CODE: [TDDL-5203][ERR_INVALID_PASSWORD] Invalid password.")
    assert "24-64 characters" in error.message


@pytest.mark.parametrize("profile", [POLARDBX, MANAGED])
def test_errors_never_echo_the_password(profile: PolicyProfile) -> None:
    error = _password_error(profile, "leaky-secret-value!'\"")
    assert error is not None
    assert "leaky-secret-value" not in error.message


# --- generation and settings ---


@pytest.mark.parametrize(("profile", "length"), [(POLARDBX, 20), (MANAGED, 64)])
def test_generated_passwords_follow_the_profile(profile: PolicyProfile, length: int) -> None:
    assert profile.generated_password_length == length
    seen = set()
    for _ in range(200):
        password = profile.generate_password()
        assert len(password) == length
        profile.validate_password(password)
        seen.add(password)
    assert len(seen) == 200


def test_polardbx_generated_alphabet() -> None:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789@#$%^&+=")
    assert set(POLARDBX.generated_password_alphabet) == allowed


def test_empty_password_on_create() -> None:
    assert POLARDBX.empty_password_allowed_on_create is True
    assert MANAGED.empty_password_allowed_on_create is False


def test_profile_by_name() -> None:
    assert profile_by_name("polardbx") is POLARDBX
    assert profile_by_name("managed") is MANAGED
    assert profile_by_name(" Managed ") is MANAGED
    assert DEFAULT_PROFILE is POLARDBX
    with pytest.raises(ValueError, match="unknown policy profile"):
        profile_by_name("mysql")


def test_builtin_names_are_not_subject_to_the_rule() -> None:
    # Built-ins are made by the operator: '<db>_RO' breaks the polardbx rule (underscore) and
    # that is fine, because nothing validates it. The rule itself does reject it.
    assert _username_error(POLARDBX, "easydb_RO") is not None
