from __future__ import annotations

import pytest

from voicebot.auth.passwords import (
    check_password_rules,
    hash_password,
    needs_rehash,
    verify_password,
)
from voicebot.errors import InputError


def test_a_password_hashes_with_argon2id_and_verifies() -> None:
    stored = hash_password("a long enough secret")
    assert stored.startswith("$argon2id$")
    assert verify_password(stored, "a long enough secret")
    assert not verify_password(stored, "a long enough secreT")
    assert not needs_rehash(stored)


def test_a_missing_or_corrupt_hash_never_verifies() -> None:
    assert not verify_password(None, "anything at all")
    assert not verify_password("not a hash", "anything at all")
    assert not verify_password(hash_password("x" * 12 + "yz"), "x" * 300)  # over the length bound


def test_weaker_parameters_ask_for_a_rehash() -> None:
    from argon2 import PasswordHasher

    weak = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1).hash("a long enough secret")
    assert verify_password(weak, "a long enough secret")
    assert needs_rehash(weak)


@pytest.mark.parametrize(
    ("password", "reason"),
    [
        ("short", "at least"),
        ("ana.novak", "at least"),
        ("ana.novak.", "user name"),
        ("aaaaaaaaaaaa", "too easy"),
        ("x" * 300, "at most"),
    ],
)
def test_password_rules_say_what_is_wrong(password: str, reason: str) -> None:
    with pytest.raises(InputError, match=reason):
        check_password_rules(password, "ana.novak." if reason == "user name" else "ana.novak")
