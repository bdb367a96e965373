"""The staff file: scrypt hashes checked in constant time, and a broken file named with what
to fix."""

from __future__ import annotations

import pytest

from ari_app.staff.accounts import (Account, StaffAccounts, StaffFileError, hash_password,
                                    new_password, parse, render, verify_password)

FAST = 2 ** 10


def test_given_hash_then_only_the_password_matches():
    stored = hash_password("correct horse", n=FAST)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse", stored)
    assert not verify_password("correct hors", stored)
    assert not verify_password("correct horse", "scrypt$broken")
    assert hash_password("same", n=FAST) != hash_password("same", n=FAST)  # salted


def test_given_file_when_rendered_and_loaded_then_same_accounts(tmp_path):
    accounts = {"operator1": Account("operator1", "operator", "PJSIP/operator1",
                                     hash_password("pw", n=FAST)),
                "boss": Account("boss", "supervisor", None, hash_password("pw2", n=FAST))}
    path = tmp_path / "staff.toml"
    path.write_text(render(accounts))
    loaded = StaffAccounts.load(path)
    assert loaded.accounts == accounts
    assert loaded.check("operator1", "pw") == accounts["operator1"]
    assert loaded.check("operator1", "pw2") is None
    assert loaded.check("nobody", "pw") is None


@pytest.mark.parametrize("users, says", [
    ({"Op": {}}, "user name"),
    ({"op": {"role": "admin", "password": "scrypt$x"}}, "role must be one of"),
    ({"op": {"role": "operator", "password": "scrypt$x"}}, 'endpoint = "PJSIP/<phone>"'),
    ({"op": {"role": "supervisor", "password": "secret"}}, "scrypt hash"),
    ({"op": {"role": "supervisor", "password": "scrypt$x", "pin": 1}}, "unknown keys"),
])
def test_given_broken_entry_then_error_names_it(users, says):
    with pytest.raises(StaffFileError, match="staff file: \\[users\\.") as caught:
        parse({"users": users})
    assert says in str(caught.value)


def test_given_missing_or_bad_file_then_says_what_to_do(tmp_path):
    with pytest.raises(StaffFileError, match="not found .*ari-etiquette staff set"):
        StaffAccounts.load(tmp_path / "none.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[users.op\n")
    with pytest.raises(StaffFileError, match="not valid TOML"):
        StaffAccounts.load(bad)


def test_generated_password_is_typeable():
    password = new_password()
    assert len(password) == 19 and password.count("-") == 3
