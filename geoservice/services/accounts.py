"""Accounts: operators (their assigned sites only) and union staff (every site), and their bearer tokens.

The repository (:class:`~geoservice.store.relational.Accounts`) stores; this service adds the rules: an account
name is what people see, in any script (``某银行东城支行``), checked and normalised once here; a token is
``gso_`` + 256 random bits, shown once and stored only as its SHA-256 (:mod:`geoservice.auth`).
"""
from __future__ import annotations

import unicodedata

from geoservice.auth import new_token, token_hash
from geoservice.errors import Unprocessable
from geoservice.model import ROLES, Operator, TokenInfo
from geoservice.store.relational import Accounts

NAME_MAX = 64
# Control characters, invisible formatting (bidi overrides, zero-width), private use, unassigned, separators.
_REFUSED = ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def check_operator_name(name: str, role: str = "operator") -> str:
    """The account name as stored: NFC, trimmed, 1–64 characters of any script, no control or invisible
    characters (they would spoof or break logs and the audit trail). ``Unprocessable`` names the problem."""
    text = unicodedata.normalize("NFC", name or "").strip()
    if not 1 <= len(text) <= NAME_MAX:
        raise Unprocessable(f"operator name must be 1-{NAME_MAX} characters",
                            [{"field": "name", "reason": f"must be 1-{NAME_MAX} characters"}])
    bad = [ch for ch in text if unicodedata.category(ch) in _REFUSED or (ch.isspace() and ch != " ")]
    if bad:
        reason = f"contains a control or invisible character (U+{ord(bad[0]):04X})"
        raise Unprocessable(f"operator name {reason}", [{"field": "name", "reason": reason}])
    if role not in ROLES:
        raise Unprocessable(f"role must be one of {', '.join(ROLES)}",
                            [{"field": "role", "reason": f"must be one of {', '.join(ROLES)}"}])
    return text


class AccountService(Accounts):
    """The accounts repository with the rules on top."""

    def create(self, name: str, role: str = "operator") -> Operator:
        """A new account; ``Unprocessable`` for a bad name or role, ``Conflict`` when the name is taken."""
        return super().create(check_operator_name(name, role), role)

    def issue_token(self, name: str, label: str = "", site_id: str | None = None) -> tuple[str, TokenInfo]:
        """A fresh token for the account: shown once (the caller prints it), only its hash is kept. With
        ``site_id`` (one of the account's sites) the token may only post or clear that site's live status."""
        token = new_token()
        return token, self.add_token(name, token_hash(token), label[:100], site_id)
