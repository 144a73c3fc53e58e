"""Accounts: operators (their assigned sites only), district staff and union staff (every site), their bearer
tokens, passwords and sessions.

The repository (:class:`~geoservice.store.relational.Accounts`) stores; this service adds the rules: an account
name is what people see, in any script (``某银行东城支行``), checked and normalised once here; a token is
``gso_`` + 256 random bits, shown once and stored only as its SHA-256 (:mod:`geoservice.auth`); a login is
case-folded ASCII, a password is checked against the policy and stored as its scrypt hash, a wrong one counts
towards the lockout, and an unknown login costs the same time and gets the same answer as a wrong password
(:mod:`geoservice.passwords`). Sessions and setup codes are random and stored only as their SHA-256.
"""
from __future__ import annotations

import datetime as dt
import hmac
import re
import unicodedata
from collections.abc import Sequence

from geoservice import passwords as pw
from geoservice.auth import new_token, token_hash
from geoservice.errors import AccountLocked, Forbidden, Unauthorized, Unprocessable
from geoservice.model import ROLES, Operator, TokenInfo
from geoservice.store.relational import Accounts
from geoservice.validation import Problem, ValidationFailed

SESSION_REALM = 'Session realm="geoservice operators"'
WRONG_CREDENTIALS = "the login name or the password is wrong / 登录名或密码错误"
ADCODE = re.compile(r"^[0-9]{6}$")

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


def wrong_credentials() -> Unauthorized:
    """The one answer to a wrong password, an unknown login, a locked account's wrong password and a bad code."""
    return Unauthorized(WRONG_CREDENTIALS, realm=SESSION_REALM)


class AccountService(Accounts):
    """The accounts repository with the rules on top."""

    def create(self, name: str, role: str = "operator", login: str | None = None,
               districts: Sequence[str] = ()) -> Operator:
        """A new account; ``Unprocessable`` for a bad name, role, login or district list, ``Conflict`` when the
        name or login is taken. A district_admin needs at least one district; other roles take none."""
        text = check_operator_name(name, role)
        problems: list[Problem] = []
        normal = None
        if login is not None:
            normal = pw.normal_login(login)
            problems.extend(p for p in [pw.login_problem(normal)] if p)
        problems.extend(self._district_problems(role, districts))
        if problems:
            raise ValidationFailed(problems)
        return super().create(text, role, normal, sorted(set(districts)))

    def _district_problems(self, role: str, districts: Sequence[str]) -> list[Problem]:
        if role != "district_admin":
            return [Problem("districts", "only a district_admin has districts")] if districts else []
        if not districts:
            return [Problem("districts", "a district_admin needs at least one district adcode")]
        bad = [d for d in districts if not ADCODE.match(d)]
        if bad:
            return [Problem("districts", f"{bad[0][:20]!r} is not a 6-digit adcode")]
        unknown = sorted(set(districts) - self.known_districts(districts))
        return [Problem("districts", f"no district {', '.join(unknown)}")] if unknown else []

    def give_login(self, name: str, login: str) -> Operator:
        """Give an existing account a login name (checked and case-folded)."""
        normal = pw.normal_login(login)
        problem = pw.login_problem(normal)
        if problem:
            raise ValidationFailed([problem])
        self.set_login(name, normal)
        found = self.get(name)
        assert found is not None
        return found

    def set_password(self, operator: Operator, password: str, field: str = "password") -> None:
        """Check ``password`` against the policy (422 with zh/en reasons) and store its hash; the account's
        sessions end, its lock and failure count are cleared."""
        problems = pw.password_problems(password, operator.login, field)
        if problems:
            raise ValidationFailed(problems)
        self.set_password_hash(operator.id, pw.hash_password(password))

    def sign_in(self, login: str, password: str, lockout_after: int) -> Operator:
        """The account whose login and password these are. A wrong password, an unknown login and an account
        without a password all cost one scrypt and raise the same ``Unauthorized``; a wrong password counts
        towards the lockout. A locked account says so (``AccountLocked``) only to whoever knows its password."""
        normal = pw.normal_login(login)
        found = self.password_of(normal) if pw.login_problem(normal) is None else None
        stored = found[1] if found else None
        if not pw.verify_password(password, stored) or found is None:
            if found is not None and stored is not None:
                self.failed_login(found[0], lockout_after)
            raise wrong_credentials()
        oid, _, locked = found
        if locked:
            raise AccountLocked("this account is locked after too many wrong passwords: ask union staff to "
                                "unlock it / 密码错误次数过多，账号已锁定，请联系工会管理员解锁")
        self.good_login(oid)
        operator = self.by_id(oid)
        assert operator is not None
        return operator

    def change_password(self, operator: Operator, old: str, new: str) -> None:
        """The account holder's own change: the old password must be right (403 otherwise, counted towards the
        lockout like any wrong password); sessions end, so the caller starts a fresh one."""
        found = self.password_of(operator.login) if operator.login else None
        stored = found[1] if found else None
        if found is None or not pw.verify_password(old, stored):
            if found is not None and stored is not None:
                self.failed_login(found[0], 1 << 30)
            raise Forbidden("the current password is wrong / 当前密码错误",
                            [{"field": "old_password", "reason": "is wrong"}])
        self.set_password(operator, new, "new_password")

    def reset_password(self, name: str, lifetime: dt.timedelta) -> tuple[str, Operator, dt.datetime]:
        """An admin's reset: a one-time setup code (shown once; only its hash is stored) valid for
        ``lifetime``; the old password stops working and the account's sessions end."""
        operator = self.get(name)
        if operator is not None and not operator.login:
            raise Unprocessable(f"{name!r} has no login name: give it one first",
                                [{"field": "login", "reason": "the account has none"}])
        code = pw.new_setup_code()
        operator, expires = self.reset_with_code(name, token_hash(code), lifetime)
        return code, operator, expires

    def redeem_setup_code(self, login: str, code: str, password: str) -> Operator:
        """Set a password with an admin's setup code (once, before it expires); a wrong, used or expired code is
        the same 401 as a wrong password."""
        normal = pw.normal_login(login)
        pending = self.setup_code_of(normal) if pw.login_problem(normal) is None else None
        now = dt.datetime.now(dt.UTC)
        if pending is None or now >= pending[2] or not hmac.compare_digest(pending[1], token_hash(code)):
            raise wrong_credentials()
        operator = self.by_id(pending[0])
        assert operator is not None
        self.set_password(operator, password)  # also deletes the code
        found = self.by_id(pending[0])
        assert found is not None
        return found

    def issue_token(self, name: str, label: str = "", site_id: str | None = None) -> tuple[str, TokenInfo]:
        """A fresh token for the account: shown once (the caller prints it), only its hash is kept. With
        ``site_id`` (one of the account's sites) the token may only post or clear that site's live status."""
        token = new_token()
        return token, self.add_token(name, token_hash(token), label[:100], site_id)
