"""Naming and password rules, as a policy profile chosen for the whole proxy.

``POLARDBX`` (the default) follows PolarDB-X 1.0; ``MANAGED`` follows the managed-database
provider's rules. The rules apply to accounts made by SQL: built-in account names (``<db>``,
``<db>_RO``) are made by the operator and are not checked against them. Pure values.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass

from auth.errors import ErrorCode, sql_error
from auth.passwords import generate_password


@dataclass(frozen=True)
class PolicyProfile:
    name: str
    # Whole-string rules (checked with fullmatch) and the error texts that state them.
    username_rule: re.Pattern[str]
    username_error: str
    password_rule: re.Pattern[str]
    password_error: str
    generated_password_length: int
    generated_password_alphabet: str
    # CREATE USER without IDENTIFIED BY: an empty password (True) or a generated one (False).
    empty_password_allowed_on_create: bool

    def validate_username(self, user: str) -> None:
        """Raise TDDL-5202 unless ``user`` follows this profile's naming rule."""
        if self.username_rule.fullmatch(user) is None:
            raise sql_error(ErrorCode.TDDL_INVALID_USERNAME, self.username_error)

    def validate_password(self, password: str) -> None:
        """Raise TDDL-5203 unless ``password`` follows this profile's password rule.

        The error text states the rules and never repeats the password.
        """
        if self.password_rule.fullmatch(password) is None:
            raise sql_error(ErrorCode.TDDL_INVALID_PASSWORD, self.password_error)

    def generate_password(self) -> str:
        """A random password that satisfies this profile's own password rule."""
        while True:
            password = generate_password(
                self.generated_password_length, self.generated_password_alphabet
            )
            if self.password_rule.fullmatch(password) is not None:
                return password


_LETTERS_DIGITS = string.ascii_letters + string.digits

POLARDBX = PolicyProfile(
    name="polardbx",
    username_rule=re.compile(r"[A-Za-z][A-Za-z0-9]{3,19}"),
    username_error=(
        "Invalid username. Username requirements: 1. Must be 4-20 characters; "
        "2. Must start with an alphabetic letter; 3. Characters are limited to uppercase and "
        "lowercase letters, and numerical digits."
    ),
    password_rule=re.compile(r"[A-Za-z0-9@#$%^&+=]{6,20}"),
    password_error=(
        "Invalid password. Password requirements: 1. Must be 6-20 characters; "
        "2. Characters are limited to uppercase and lowercase alphabetic letters, numerical "
        "digits, and special characters(@#$%^&+=)."
    ),
    generated_password_length=20,
    generated_password_alphabet=_LETTERS_DIGITS + "@#$%^&+=",
    empty_password_allowed_on_create=True,
)

MANAGED = PolicyProfile(
    name="managed",
    username_rule=re.compile(r"[A-Za-z][A-Za-z0-9_]{5,31}"),
    username_error=(
        "Invalid username. Username requirements: 1. Must be 6-32 characters; "
        "2. Must start with an alphabetic letter; 3. Characters are limited to uppercase and "
        "lowercase letters, numerical digits, and underscores(_)."
    ),
    password_rule=re.compile(r"[^\"']{24,64}"),
    password_error=(
        "Invalid password. Password requirements: 1. Must be 24-64 characters; "
        "2. Must not contain the characters \" or '."
    ),
    generated_password_length=64,
    generated_password_alphabet=_LETTERS_DIGITS + "_",
    empty_password_allowed_on_create=False,
)

DEFAULT_PROFILE = POLARDBX
PROFILES: dict[str, PolicyProfile] = {p.name: p for p in (POLARDBX, MANAGED)}


def profile_by_name(name: str) -> PolicyProfile:
    """``'polardbx'`` or ``'managed'`` (case-insensitive); ValueError for anything else."""
    profile = PROFILES.get(name.strip().lower())
    if profile is None:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"unknown policy profile {name!r} (known: {known})")
    return profile
