"""`ari-etiquette staff`: the admin sets, lists and removes accounts; only hashes are written."""

from __future__ import annotations

import io

from ari_app.cli import main
from ari_app.staff.accounts import StaffAccounts


def test_given_set_list_remove_then_file_holds_hashes_only(tmp_path, monkeypatch, capsys):
    path = tmp_path / "staff.toml"
    assert main(["staff", "set", "operator1", "--role", "operator", "--endpoint",
                 "PJSIP/operator1", "--generate", "--file", str(path)]) == 0
    password = capsys.readouterr().out.splitlines()[0].split(": ")[1]
    assert password not in path.read_text()
    assert StaffAccounts.load(path).check("operator1", password) is not None
    assert path.stat().st_mode & 0o077 == 0  # private

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-password\n"))
    assert main(["staff", "set", "boss", "--role", "supervisor", "--password-stdin",
                 "--file", str(path)]) == 0
    assert StaffAccounts.load(path).check("boss", "a-long-password") is not None
    capsys.readouterr()
    assert main(["staff", "list", "--file", str(path)]) == 0
    assert capsys.readouterr().out == "boss\tsupervisor\t\noperator1\toperator\tPJSIP/operator1\n"
    assert main(["staff", "remove", "boss", "--file", str(path)]) == 0
    assert set(StaffAccounts.load(path).accounts) == {"operator1"}


def test_given_bad_input_then_clear_error_and_file_unchanged(tmp_path, capsys):
    path = tmp_path / "staff.toml"
    assert main(["staff", "set", "newbie", "--generate", "--file", str(path)]) == 2
    assert "--role" in capsys.readouterr().err
    assert main(["staff", "set", "op", "--role", "operator", "--generate",
                 "--file", str(path)]) == 2
    assert 'endpoint = "PJSIP/<phone>"' in capsys.readouterr().err
    assert not path.exists()
