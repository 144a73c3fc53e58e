"""Passwords, login names and one-time setup codes for people signing in to the operators' page.

A password is stored as ``scrypt$<n>$<r>$<p>$<salt>$<key>`` (standard-library :func:`hashlib.scrypt`, memory-hard;
the salt is 16 random bytes per password, salt and key in URL-safe base64), so a stored hash names the cost it
was made with and stronger parameters later do not invalidate old hashes. Checking compares keys with
:func:`hmac.compare_digest`. A login that does not exist (or an account without a password) is checked against
:func:`dummy_hash` with the same cost, so a wrong password takes the same time whether the login exists or not.

argon2-cffi would do as well; it is not a dependency of the service, scrypt is in every Python.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets

from geoservice.validation import Problem

# OWASP's scrypt floor is N=2^17 at r=8 (128 MiB); 2^15 (32 MiB, ~0.2 s on the 2-core test machine) keeps a
# burst of sign-ins from exhausting a small server's memory. The parameters travel in the hash string.
SCRYPT_N = 1 << 15
SCRYPT_R = 8
SCRYPT_P = 1
KEY_BYTES = 32
SALT_BYTES = 16
MAX_PASSWORD = 1024  # characters: more is refused before it is hashed
MIN_PASSWORD = 10
LOGIN_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.@-]{2,63}$"
SETUP_CODE_BYTES = 15  # 120 bits, 20 characters of URL-safe base64


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _scrypt(password: str, salt: bytes, n: int, r: int, p: int) -> bytes:
    return hashlib.scrypt(password.encode("utf-8"), salt=salt, n=n, r=r, p=p, dklen=KEY_BYTES,
                          maxmem=256 * n * r + (1 << 20))


def hash_password(password: str) -> str:
    """The stored form of ``password``: scrypt with a fresh salt, parameters included."""
    salt = secrets.token_bytes(SALT_BYTES)
    key = _scrypt(password, salt, SCRYPT_N, SCRYPT_R, SCRYPT_P)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(key)}"


@functools.cache
def dummy_hash() -> str:
    """A hash of a random password at today's cost: what unknown logins are checked against."""
    return hash_password(secrets.token_urlsafe(16))


def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` matches ``stored``; with no stored hash the dummy is checked (same time, False)."""
    target = stored or dummy_hash()
    try:
        scheme, n, r, p, salt, key = target.split("$")
        if scheme != "scrypt":
            raise ValueError(scheme)
        candidate = _scrypt(password[:MAX_PASSWORD], _unb64(salt), int(n), int(r), int(p))
    except (ValueError, TypeError):  # an unreadable stored hash never matches
        candidate, key = b"", _b64(secrets.token_bytes(KEY_BYTES))
    return hmac.compare_digest(candidate, _unb64(key)) and stored is not None


def normal_login(login: str) -> str:
    """A login name as stored and looked up: trimmed and case-folded (``Dora`` and ``dora`` are one login)."""
    return (login or "").strip().casefold()


def login_problem(login: str) -> Problem | None:
    """Why ``login`` cannot be a login name, or None: 3-64 of ``A-Z a-z 0-9 _ . @ -``, starting with a letter or
    digit (ASCII, so that look-alike letters from other scripts cannot make a second "dora")."""
    if not re.match(LOGIN_PATTERN, login or ""):
        return Problem("login", "must be 3-64 characters of A-Z, a-z, 0-9, _ . @ -, starting with a letter or "
                                "digit / 登录名须为 3-64 个字母、数字或 _ . @ -，以字母或数字开头")
    return None


def password_problems(password: str, login: str | None, field: str = "password") -> list[Problem]:
    """The policy, with reasons in English and Chinese: at least 10 characters, at most 1024, not the login."""
    problems = []
    if len(password) < MIN_PASSWORD:
        problems.append(Problem(field, f"must be at least {MIN_PASSWORD} characters / 密码至少 {MIN_PASSWORD} 个字符"))
    if len(password) > MAX_PASSWORD:
        problems.append(Problem(field, f"must be at most {MAX_PASSWORD} characters / 密码最多 {MAX_PASSWORD} 个字符"))
    if login and normal_login(password) == normal_login(login):
        problems.append(Problem(field, "must not be the login name / 密码不能与登录名相同"))
    return problems


def new_setup_code() -> str:
    """A one-time setup code (120 random bits): shown once to the admin, stored only as its SHA-256."""
    return secrets.token_urlsafe(SETUP_CODE_BYTES)
