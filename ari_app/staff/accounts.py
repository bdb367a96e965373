"""The staff file: who may sign in, as what, with which password (scrypt hashes only).

    [users.operator1]
    role = "operator"            # or "supervisor"
    endpoint = "PJSIP/operator1" # an operator's phone: the calls that are theirs
    password = "scrypt$16384$8$1$<salt>$<hash>"

The admin sets passwords with `ari-etiquette staff set USER`; the sandbox writes one with
generated passwords. A broken file is a `StaffFileError` that says which line to fix.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
import secrets
import tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Account", "StaffAccounts", "StaffFileError", "hash_password", "new_password",
           "verify_password"]

ROLES = ("operator", "supervisor")
_USER = re.compile(r"[a-z0-9][a-z0-9_.-]{0,63}")
_ENDPOINT = re.compile(r"[A-Za-z]+/[\x21-\x7e]{1,80}")
SCRYPT_N = 2 ** 14  # 16 MB, about 50 ms: slow for a guesser, quick for one sign-in


class StaffFileError(ValueError):
    """The staff file cannot be used; the message names the file and what to fix."""


@dataclass(frozen=True, slots=True)
class Account:
    user: str
    role: str
    endpoint: str | None
    password: str  # the stored hash

    def public(self) -> dict:
        return {"user": self.user, "role": self.role, "operator": self.endpoint}


def new_password() -> str:
    """A password a person can type: 4 groups of 4 letters and digits."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(4))


def hash_password(password: str, *, n: int = SCRYPT_N) -> str:
    salt = os.urandom(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=n, r=8, p=1, dklen=32)
    return "$".join(["scrypt", str(n), "8", "1", base64.b64encode(salt).decode(),
                     base64.b64encode(digest).decode()])


def verify_password(password: str, stored: str) -> bool:
    """Constant-time check of `password` against a stored hash; a malformed hash is False."""
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        got = hashlib.scrypt(password.encode("utf-8", "surrogatepass"),
                             salt=base64.b64decode(salt), n=int(n), r=int(r), p=int(p),
                             dklen=len(expected), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, expected)


class StaffAccounts:
    """The accounts of one staff file, read at start (a change needs a restart)."""

    def __init__(self, accounts: dict[str, Account]) -> None:
        self.accounts = accounts
        self._dummy: str | None = None  # made at the first unknown user, not at import

    @classmethod
    def load(cls, path: Path) -> StaffAccounts:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StaffFileError(f"staff file {path} not found (create it with "
                                 "`ari-etiquette staff set USER --role ...`)") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise StaffFileError(f"staff file {path} not readable: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise StaffFileError(f"staff file {path} is not valid TOML: {exc}") from None
        return cls(parse(data, str(path)))

    def get(self, user: str) -> Account | None:
        return self.accounts.get(user)

    def check(self, user: str, password: str) -> Account | None:
        """The account when the password is right; None otherwise (same cost either way)."""
        account = self.accounts.get(user)
        if account is None and self._dummy is None:
            # a hash no password matches: an unknown user costs the time a known one does
            self._dummy = hash_password(new_password())
        ok = verify_password(password, account.password if account else self._dummy)
        return account if ok and account is not None else None


def parse(data: dict, where: str = "staff file") -> dict[str, Account]:
    users = data.get("users", {})
    if not isinstance(users, dict) or set(data) - {"users"}:
        raise StaffFileError(f"{where}: only [users.<name>] tables are allowed")
    accounts = {}
    for user, entry in users.items():
        at = f"{where}: [users.{user}]"
        if not _USER.fullmatch(user):
            raise StaffFileError(f"{at}: a user name is 1-64 of a-z 0-9 _ . - (lower case)")
        if not isinstance(entry, dict):
            raise StaffFileError(f"{at} must be a table")
        role, endpoint, password = entry.get("role"), entry.get("endpoint"), entry.get("password")
        if role not in ROLES:
            raise StaffFileError(f"{at}: role must be one of {', '.join(ROLES)}, not {role!r}")
        if role == "operator" and not (isinstance(endpoint, str) and _ENDPOINT.fullmatch(endpoint)):
            raise StaffFileError(f"{at}: an operator needs endpoint = \"PJSIP/<phone>\"")
        if endpoint is not None and not isinstance(endpoint, str):
            raise StaffFileError(f"{at}: endpoint must be a text")
        if not isinstance(password, str) or not password.startswith("scrypt$"):
            raise StaffFileError(f"{at}: password must be a scrypt hash (set it with "
                                 f"`ari-etiquette staff set {user}`)")
        if set(entry) - {"role", "endpoint", "password"}:
            raise StaffFileError(f"{at}: unknown keys {sorted(set(entry) - {'role', 'endpoint', 'password'})}")
        accounts[user] = Account(user, role, endpoint, password)
    return accounts


def render(accounts: dict[str, Account]) -> str:
    """The staff file's text (written by the CLI and the sandbox)."""
    lines = ["# Staff accounts for the console and the dashboard (hashes only; set passwords",
             "# with `ari-etiquette staff set USER`). Keep this file private.", ""]
    for account in sorted(accounts.values(), key=lambda a: a.user):
        lines.append(f"[users.{account.user}]")
        lines.append(f'role = "{account.role}"')
        if account.endpoint:
            lines.append(f'endpoint = "{account.endpoint}"')
        lines.append(f'password = "{account.password}"')
        lines.append("")
    return "\n".join(lines)
