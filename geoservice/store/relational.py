"""The dialect-neutral half of storage, written once for both backends: accounts and tokens, the audit trail,
couriers' reports, sites' live status, the change feed and the holiday calendar.

Each repository runs the named statements of ``sql/common/queries.sql`` through a :class:`Database`, which a
backend provides: connections and transactions (``reading``/``writing``) and a :class:`Dialect` — how parameters
are written and how times, dates, JSON and booleans travel. Nothing here knows which backend it runs on.
"""
from __future__ import annotations

import abc
import dataclasses
import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from geoservice.calendar import Calendar, CalendarDay
from geoservice.errors import Conflict, NotFound
from geoservice.model import (
    Alert,
    DeadLetter,
    FeedEntry,
    LiveStatus,
    MayBeClosed,
    Operator,
    Report,
    SiteChange,
    TokenInfo,
    Webhook,
)
from geoservice.store import sql as sqlfiles

CHUNK = 500  # ids per "IN (...)" list: well under SQLite's variable limit


class Cursor(Protocol):
    """What a statement gives back (sqlite3 and psycopg cursors both are)."""

    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Executor(Protocol):
    """Something that runs one statement with named parameters (a sqlite3 cursor, a psycopg connection)."""

    def execute(self, sql: Any, params: Any = ...) -> Any: ...


class Dialect(abc.ABC):
    """How one backend writes parameters and carries values."""

    name: str = "abstract"

    @abc.abstractmethod
    def placeholders(self, sql: str) -> str:
        """``:name`` parameters in the backend's own style."""

    @abc.abstractmethod
    def value(self, v: Any) -> Any:
        """A Python value (datetime, date, dict, list, bool) as the backend stores it."""

    @abc.abstractmethod
    def time(self, v: Any) -> dt.datetime | None:
        """A stored time back as an aware datetime."""

    @abc.abstractmethod
    def date(self, v: Any) -> dt.date:
        """A stored date back as a date."""

    @abc.abstractmethod
    def json(self, v: Any) -> Any:
        """A stored JSON document back as Python data."""


@dataclasses.dataclass(frozen=True)
class Database:
    """Connections of one backend for the repositories: its SQL dialect, and two ways to get a connection."""

    dialect: Dialect
    # Reads (no snapshot needed across statements).
    reading: Callable[[], AbstractContextManager[Executor]]
    # One write transaction: committed when the block ends, rolled back on any exception.
    writing: Callable[[], AbstractContextManager[Executor]]


def statement(db: Database, name: str, params: Mapping[str, Any], /) -> tuple[str, dict[str, Any]]:
    """Named statement ``name`` for ``db``'s dialect with ``params`` bound; list values expand to one parameter
    each (``:ids`` -> ``:ids_0, :ids_1``)."""
    bound: dict[str, Any] = {}
    lengths: list[tuple[str, int]] = []
    for key, value in params.items():
        if isinstance(value, (list, tuple)):
            names = [f"{key}_{i}" for i in range(len(value))] or [f"{key}_none"]
            lengths.append((key, len(value)))
            if not value:
                bound[f"{key}_none"] = None  # "IN (NULL)": matches nothing
            bound.update({n: db.dialect.value(v) for n, v in zip(names, value)})
        else:
            bound[key] = db.dialect.value(value)
    return _text(db.dialect, name, tuple(lengths)), bound


@functools.lru_cache(maxsize=4096)
def _text(dialect: Dialect, name: str, lengths: tuple[tuple[str, int], ...]) -> str:
    """Statement ``name`` in ``dialect``'s style with each list parameter spread over its length: made once
    per shape, not per call (a nearest request runs several)."""
    text = sqlfiles.common()[name]
    for key, n in lengths:
        names = [f"{key}_{i}" for i in range(n)] or [f"{key}_none"]
        text = re.sub(rf"(?<![:\w]):{key}\b", ", ".join(":" + m for m in names), text)
    return dialect.placeholders(text)


def run(db: Database, ex: Executor, query: str, /, **params: Any) -> Any:
    """Execute the named statement ``query`` on ``ex``; returns the cursor."""
    text, bound = statement(db, query, params)
    return ex.execute(text, bound)


def chunks(ids: Sequence[str]) -> Iterator[list[str]]:
    """Distinct ids in lists of at most :data:`CHUNK`."""
    unique = list(dict.fromkeys(ids))
    for i in range(0, len(unique), CHUNK):
        yield unique[i:i + CHUNK]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def scope_params(operator: Operator) -> dict[str, Any]:
    """The bindings of the ``scoped_sites`` fragment for an account: every site for an admin, otherwise its
    assigned sites and its districts' sites (the one definition of an account's scope, see
    :mod:`geoservice.services.scope`)."""
    return {"all_sites": operator.is_admin, "operator_id": operator.id}


def utc(t: dt.datetime) -> dt.datetime:
    """An aware time in UTC: how times the stores compare are bound (SQLite compares ISO text)."""
    return t.astimezone(dt.UTC)


class Repository:
    """Base of the repositories: one database."""

    def __init__(self, db: Database):
        self.db = db

    def _one(self, query: str, /, **params: Any) -> Any:
        with self.db.reading() as ex:
            return run(self.db, ex, query, **params).fetchone()

    def _all(self, query: str, /, **params: Any) -> list[Any]:
        with self.db.reading() as ex:
            return list(run(self.db, ex, query, **params).fetchall())

    def _page(self, query: str, count_query: str, /, **params: Any) -> tuple[list[Any], int]:
        """Rows of a ``count(*) OVER ()`` page and the total (counted apart when the page is empty)."""
        with self.db.reading() as ex:
            rows = list(run(self.db, ex, query, **params).fetchall())
            if rows:
                return rows, int(rows[0][-1])
            total = run(self.db, ex, count_query, **params).fetchone()
        return [], int(total[0]) if total else 0


class Accounts(Repository):
    """Operators and union staff, their sites and their bearer tokens (only tokens' SHA-256 is kept)."""

    def _operator(self, row: Sequence[Any]) -> Operator:
        oid, name, role, created_at, sites, tokens, login, has_password, locked, disabled, home = row[:11]
        districts: tuple[str, ...] = ()
        if role == "district_admin":
            districts = tuple(r[0] for r in self._all("operator_districts", operator_id=int(oid)))
        return Operator(int(oid), name, role, self.db.dialect.time(created_at), int(sites), int(tokens),
                        login=login, has_password=bool(has_password), locked=bool(locked), districts=districts,
                        disabled=bool(disabled), home_district=home)

    def create(self, name: str, role: str, login: str | None = None, districts: Sequence[str] = ()) -> Operator:
        """A new account (name, role, login and districts already checked); ``Conflict`` when the name or the
        login is taken."""
        with self.db.writing() as ex:
            if login is not None and run(self.db, ex, "login_taken", login=login, id=-1).fetchone():
                raise Conflict(f"the login {login!r} is taken")
            row = run(self.db, ex, "insert_operator", name=name, role=role, now=_now(), login=login).fetchone()
            if row is None:
                raise Conflict(f"an operator named {name!r} already exists")
            for adcode in dict.fromkeys(districts):
                run(self.db, ex, "insert_operator_district", operator_id=int(row[0]), adcode=adcode)
        created = self.get(name)
        assert created is not None
        return created

    def get(self, name: str) -> Operator | None:
        """One account by name."""
        row = self._one("operator_by_name", name=name)
        return self._operator(row) if row else None

    def by_id(self, operator_id: int) -> Operator | None:
        """One account by id."""
        row = self._one("operator_by_id", id=int(operator_id))
        return self._operator(row) if row else None

    def by_login(self, login: str) -> Operator | None:
        """One account by its (case-folded) login."""
        row = self._one("operator_by_login", login=login)
        return self._operator(row) if row else None

    def known_districts(self, adcodes: Sequence[str]) -> set[str]:
        """Which of these adcodes are loaded districts."""
        return {r[0] for r in self._all("known_adcodes", ids=list(dict.fromkeys(adcodes)))}

    # ---- passwords, lockout ----------------------------------------------------------------------------
    def set_login(self, name: str, login: str) -> None:
        """Give an account a (case-folded, checked) login; ``Conflict`` when another account has it."""
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            if run(self.db, ex, "login_taken", login=login, id=oid).fetchone():
                raise Conflict(f"the login {login!r} is taken")
            run(self.db, ex, "set_login", login=login, id=oid)

    def password_of(self, login: str) -> tuple[int, str | None, bool] | None:
        """``(account id, stored password hash, locked)`` of a login, or None when no account has it."""
        row = self._one("password_of_login", login=login)
        return (int(row[0]), row[1], row[2] is not None) if row else None

    def set_password_hash(self, operator_id: int, password_hash: str) -> None:
        """Store a new password hash; the account's failure count and lock are cleared, its sessions and any
        pending setup code ended."""
        with self.db.writing() as ex:
            run(self.db, ex, "set_password", hash=password_hash, id=operator_id)
            run(self.db, ex, "delete_sessions_of", operator_id=operator_id)
            run(self.db, ex, "delete_setup_code", operator_id=operator_id)

    def failed_login(self, operator_id: int, threshold: int) -> bool:
        """Count one wrong password; True when the account is (now) locked."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "record_failed_login", id=operator_id, threshold=threshold, now=_now()).fetchone()
        return row is not None and row[1] is not None

    def good_login(self, operator_id: int) -> None:
        """A right password: the run of failures is over."""
        with self.db.writing() as ex:
            run(self.db, ex, "clear_failed_logins", id=operator_id)

    def unlock(self, name: str) -> Operator:
        """Clear an account's lock and failure count (``NotFound`` for an unknown name)."""
        with self.db.writing() as ex:
            run(self.db, ex, "unlock_operator", id=self._id(ex, name))
        found = self.get(name)
        assert found is not None
        return found

    # ---- sessions --------------------------------------------------------------------------------------
    def start_session(self, operator_id: int, session_sha256: str, lifetime: dt.timedelta,
                      idle: dt.timedelta, replaces: str | None = None) -> dt.datetime:
        """Record a new session by its id's hash (ending ``replaces``, the browser's previous session, and
        every expired one); returns when it ends at the latest."""
        now = _now()
        with self.db.writing() as ex:
            if replaces:
                run(self.db, ex, "delete_session", hash=replaces)
            run(self.db, ex, "delete_expired_sessions", now=now, idle_before=now - idle)
            run(self.db, ex, "insert_session", operator_id=operator_id, hash=session_sha256, now=now,
                expires=now + lifetime)
        return now + lifetime

    def session(self, session_sha256: str, idle: dt.timedelta,
                touch_after: dt.timedelta) -> tuple[Operator, dt.datetime] | None:
        """The account of a live session (not past its absolute end, used within ``idle``) and that end, else
        None; its last
        use is written at most every ``touch_after`` (a write per request would be wasteful)."""
        row = self._one("session_by_hash", hash=session_sha256)
        if row is None:
            return None
        t = self.db.dialect.time
        now, last_seen, expires = _now(), t(row[2]), t(row[3])
        if last_seen is None or expires is None or now >= expires or now - last_seen >= idle:
            self.end_session(session_sha256)
            return None
        if now - last_seen >= touch_after:
            with self.db.writing() as ex:
                run(self.db, ex, "touch_session", hash=session_sha256, now=now)
        operator = self.by_id(int(row[0]))
        return (operator, expires) if operator and not operator.disabled else None

    def end_session(self, session_sha256: str) -> bool:
        """End one session; True when there was one."""
        with self.db.writing() as ex:
            return bool(run(self.db, ex, "delete_session", hash=session_sha256).rowcount)

    def end_sessions(self, operator_id: int) -> int:
        """End every session of an account; returns how many."""
        with self.db.writing() as ex:
            return int(run(self.db, ex, "delete_sessions_of", operator_id=operator_id).rowcount)

    # ---- setup codes -----------------------------------------------------------------------------------
    def reset_with_code(self, name: str, code_sha256: str, lifetime: dt.timedelta) -> tuple[Operator, dt.datetime]:
        """An admin's reset: the password is cleared, sessions end, and the code (by hash) may set a new one
        until the returned time. A second reset replaces the first code."""
        now = _now()
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            run(self.db, ex, "clear_password", id=oid)
            run(self.db, ex, "delete_sessions_of", operator_id=oid)
            run(self.db, ex, "upsert_setup_code", operator_id=oid, hash=code_sha256, now=now, expires=now + lifetime)
        found = self.get(name)
        assert found is not None
        return found, now + lifetime

    def setup_code_of(self, login: str) -> tuple[int, str, dt.datetime] | None:
        """``(account id, code hash, expiry)`` of a login's pending setup code."""
        row = self._one("setup_code_of_login", login=login)
        if row is None:
            return None
        expires = self.db.dialect.time(row[2])
        assert expires is not None
        return int(row[0]), row[1], expires

    def all(self) -> list[Operator]:
        """Every account with its site and active-token counts, by name."""
        return [self._operator(r) for r in self._all("all_operators")]

    def for_token(self, token_sha256: str) -> Operator | None:
        """The account of an active (not revoked) token, by the token's hash, with the one site the token is
        limited to (``token_site``), if any."""
        with self.db.reading() as ex:
            row = run(self.db, ex, "operator_by_token", hash=token_sha256).fetchone()
            if row is None:
                return None
            scope = run(self.db, ex, "token_site", hash=token_sha256).fetchone()
        return dataclasses.replace(self._operator(row), token_site=scope[0] if scope else None)

    def _id(self, ex: Executor, name: str) -> int:
        row = run(self.db, ex, "operator_id", name=name).fetchone()
        if row is None:
            raise NotFound(f"no operator named {name!r}")
        return int(row[0])

    def assign(self, name: str, site_ids: Sequence[str]) -> int:
        """Give an account these sites, all or none (``NotFound`` names unknown ids); returns how many were new."""
        ids = list(dict.fromkeys(site_ids))
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            known: set[str] = set()
            for chunk in chunks(ids):
                known.update(r[0] for r in run(self.db, ex, "existing_site_ids", ids=chunk).fetchall())
            unknown = [i for i in ids if i not in known]
            if unknown:
                raise NotFound(f"no site with id {', '.join(unknown)}")
            before = run(self.db, ex, "assigned_count", operator_id=oid).fetchone()[0]
            now = _now()
            for site_id in ids:
                run(self.db, ex, "assign_site", operator_id=oid, site_id=site_id, now=now)
            after = run(self.db, ex, "assigned_count", operator_id=oid).fetchone()[0]
        return int(after) - int(before)

    def unassign(self, name: str, site_ids: Sequence[str]) -> int:
        """Take sites away from an account; returns how many were removed."""
        n = 0
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            for site_id in dict.fromkeys(site_ids):
                n += run(self.db, ex, "unassign_site", operator_id=oid, site_id=site_id).rowcount
        return n

    def owned_site_ids(self, operator: Operator, site_ids: Sequence[str]) -> set[str]:
        """Which of ``site_ids`` exist and are in the account's scope (:func:`scope_params`)."""
        out: set[str] = set()
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                out.update(r[0] for r in run(self.db, ex, "owned_site_ids", ids=chunk,
                                             **scope_params(operator)).fetchall())
        return out

    def site_ids_page(self, operator: Operator, limit: int, offset: int, district: str | None = None,
                      text: str | None = None) -> tuple[list[str], int]:
        """A page of the site ids in the account's scope by id, optionally in one district and matching a piece
        of the id or a name, and their total."""
        pattern = "%" + (text or "").lower().replace("\\", "").replace("%", "").replace("_", "") + "%"
        rows, total = self._page("search_site_ids", "search_site_ids_count", limit=limit, offset=offset,
                                 any_district=district is None, district=district or "", any_text=not text,
                                 pattern=pattern, **scope_params(operator))
        return [r[0] for r in rows], total

    def scoped(self, operator: Operator) -> list[Operator]:
        """The accounts in a manager's scope, by name (an operator: itself)."""
        return [self._operator(r) for r in self._all("scoped_operators", **scope_params(operator))]

    def set_home_district(self, operator_id: int, adcode: str | None) -> None:
        """The district an operator account belongs to (a district admin created it there)."""
        with self.db.writing() as ex:
            run(self.db, ex, "set_home_district", id=operator_id, adcode=adcode)

    def set_disabled(self, operator_id: int, disabled: bool) -> None:
        """Disable (its tokens and password stop working, its sessions end) or enable an account."""
        with self.db.writing() as ex:
            run(self.db, ex, "set_disabled", id=operator_id, now=_now() if disabled else None)
            if disabled:
                run(self.db, ex, "delete_sessions_of", operator_id=operator_id)

    def assignees(self, site_ids: Sequence[str]) -> dict[str, list[str]]:
        """The accounts each site is assigned to (only sites that have some)."""
        out: dict[str, list[str]] = {}
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                for sid, name in run(self.db, ex, "assignees_of", ids=chunk).fetchall():
                    out.setdefault(sid, []).append(name)
        return out

    def request_verify(self, site_id: str, actor: str) -> dt.datetime:
        """Ask the site's operators to verify it (one request per site; a new one replaces the old)."""
        now = _now()
        with self.db.writing() as ex:
            run(self.db, ex, "upsert_verify_request", site_id=site_id, actor=actor, now=now)
        return now

    def verify_requests(self, site_ids: Sequence[str]) -> dict[str, tuple[str, dt.datetime]]:
        """``{site_id: (requested_by, requested_at)}`` of the pending verify requests among ``site_ids``."""
        out: dict[str, tuple[str, dt.datetime]] = {}
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                for sid, who, at in run(self.db, ex, "verify_requests_for", ids=chunk).fetchall():
                    out[sid] = (who, self.db.dialect.time(at) or _now())
        return out

    def clear_verify_request(self, site_id: str) -> bool:
        """The site was verified: its request, if any, is done."""
        with self.db.writing() as ex:
            return bool(run(self.db, ex, "delete_verify_request", site_id=site_id).rowcount)

    def add_token(self, name: str, token_sha256: str, label: str = "", site_id: str | None = None) -> TokenInfo:
        """Record a new token's hash for an account; ``site_id`` limits it to that site's live status (the site
        must be the account's: ``NotFound`` otherwise)."""
        now = _now()
        if site_id is not None:
            operator = self.get(name)
            if operator is None:
                raise NotFound(f"no operator named {name!r}")
            if not self.owned_site_ids(operator, [site_id]):
                raise NotFound(f"{name} has no site with id {site_id[:64]!r}")
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            row = run(self.db, ex, "insert_token", operator_id=oid, hash=token_sha256, label=label, now=now,
                      site_id=site_id).fetchone()
        return TokenInfo(int(row[0]), name, label, now, site_id=site_id)

    def tokens(self, name: str) -> list[TokenInfo]:
        """An account's tokens (active and revoked), newest first."""
        with self.db.reading() as ex:
            oid = self._id(ex, name)
            rows = run(self.db, ex, "list_tokens", operator_id=oid).fetchall()
        t = self.db.dialect.time
        return [TokenInfo(int(r[0]), name, r[1], t(r[2]) or _now(), t(r[3]), r[4]) for r in rows]

    def revoke(self, name: str, token_ids: Sequence[int] | None = None) -> int:
        """Revoke some (or, with None, all) of an account's active tokens; returns how many."""
        now = _now()
        with self.db.writing() as ex:
            oid = self._id(ex, name)
            if token_ids is None:
                return int(run(self.db, ex, "revoke_all_tokens", operator_id=oid, now=now).rowcount)
            return sum(run(self.db, ex, "revoke_token", id=int(t), operator_id=oid, now=now).rowcount
                       for t in dict.fromkeys(token_ids))


class Audit(Repository):
    """The append-only audit trail (written by the site writers in the same transaction as each change)."""

    def _change(self, row: Sequence[Any]) -> SiteChange:
        cid, site_id, actor, at, action, changes, version = row[:7]
        return SiteChange(int(cid), site_id, actor, self.db.dialect.time(at) or _now(), action,
                          self.db.dialect.json(changes), version)

    def site_history(self, site_id: str, limit: int = 50, offset: int = 0) -> tuple[list[SiteChange], int]:
        """A site's changes, newest first, and their total."""
        rows, total = self._page("site_history", "site_history_count", site_id=site_id, limit=limit, offset=offset)
        return [self._change(r) for r in rows], total

    def recent(self, limit: int = 50, offset: int = 0, operator: Operator | None = None, site_id: str | None = None,
               actor: str | None = None, district: str | None = None, since: dt.datetime | None = None,
               until: dt.datetime | None = None) -> tuple[list[SiteChange], int]:
        """Changes in the account's scope (None: every change), newest first, optionally by site, actor,
        district and time range ``[since, until)``, and their total."""
        scope = scope_params(operator) if operator is not None else {"all_sites": True, "operator_id": 0}
        rows, total = self._page("recent_changes", "changes_count", limit=limit, offset=offset,
                                 any_site=site_id is None, site_id=site_id or "", any_actor=actor is None,
                                 actor=actor or "", any_district=district is None, district=district or "",
                                 any_since=since is None, since=utc(since) if since else None,
                                 any_until=until is None, until=utc(until) if until else None, **scope)
        return [self._change(r) for r in rows], total


class Reports(Repository):
    """Couriers' reports about sites. Nothing about the reporter is stored."""

    def _report(self, row: Sequence[Any]) -> Report:
        (rid, site_id, rtype, amenity, note, lang, observed_at, received_at, resolved_at, resolved_by,
         resolution_note) = row[:11]
        t = self.db.dialect.time
        return Report(site_id=site_id, type=rtype, observed_at=t(observed_at) or _now(), amenity=amenity, note=note,
                      lang=lang, id=int(rid), received_at=t(received_at), resolved_at=t(resolved_at),
                      resolved_by=resolved_by, resolution_note=resolution_note)

    def add(self, report: Report, client_hash: str | None = None, keep_hashes: dt.timedelta | None = None,
            now: dt.datetime | None = None) -> Report:
        """Store a report; returns it with its id and received time. ``client_hash`` (a keyed hash of the
        client, never its address) tells clients apart; hashes older than ``keep_hashes`` are forgotten."""
        received = utc(now or _now())
        with self.db.writing() as ex:
            row = run(self.db, ex, "insert_report", site_id=report.site_id, type=report.type, amenity=report.amenity,
                      note=report.note, lang=report.lang, observed_at=report.observed_at, now=received,
                      client_hash=client_hash).fetchone()
            if keep_hashes is not None:
                run(self.db, ex, "forget_client_hashes", before=received - keep_hashes)
        return self._report(row)

    def secret(self, name: str, make: Callable[[], str]) -> str:
        """A secret the service keeps for itself, made by ``make`` on first use (the same in every process)."""
        row = self._one("get_secret", name=name)
        if row is None:  # read back in the same transaction: a standby may not have the new row yet
            with self.db.writing() as ex:
                run(self.db, ex, "insert_secret", name=name, value=make())
                row = run(self.db, ex, "get_secret", name=name).fetchone()
        return str(row[0])

    def get(self, report_id: int) -> Report | None:
        """One report by id."""
        row = self._one("get_report", id=int(report_id))
        return self._report(row) if row else None

    def page(self, operator: Operator, include_resolved: bool = False, limit: int = 50,
             offset: int = 0, site_id: str | None = None, district: str | None = None,
             rtype: str | None = None) -> tuple[list[Report], int]:
        """Reports on the sites in the account's scope, newest first, optionally by site, district and kind, and
        their total."""
        rows, total = self._page("list_reports", "count_reports", include_resolved=include_resolved, limit=limit,
                                 offset=offset, any_site=site_id is None, site_id=site_id or "",
                                 any_district=district is None, district=district or "", any_type=rtype is None,
                                 type=rtype or "", **scope_params(operator))
        return [self._report(r) for r in rows], total

    def resolve(self, report_id: int, actor: str, note: str | None = None) -> Report:
        """Mark a report resolved (``NotFound`` if unknown, ``Conflict`` if already resolved)."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "resolve_report", id=int(report_id), actor=actor, note=note, now=_now()).fetchone()
        if row is None:
            if self.get(report_id) is None:
                raise NotFound(f"no report {report_id}")
            raise Conflict(f"report {report_id} is already resolved")
        return self._report(row)

    def unresolved_counts(self, site_ids: Sequence[str]) -> dict[str, int]:
        """Open reports per site id (only ids that have some)."""
        out: dict[str, int] = {}
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                out.update({r[0]: int(r[1]) for r in run(self.db, ex, "unresolved_report_counts",
                                                          ids=chunk).fetchall()})
        return out


def live_status_of(row: Sequence[Any], dialect: Dialect) -> LiveStatus:
    """A stored live status from its ``live_status_columns`` (the first seven of ``row``)."""
    sid, state, seats, capacity, posted_at, expires_at, posted_by = row[:7]
    t = dialect.time
    return LiveStatus(sid, state, t(posted_at) or _now(), t(expires_at) or _now(),
                      None if seats is None else int(seats), None if capacity is None else int(capacity),
                      posted_by or "")


class LiveStatuses(Repository):
    """Sites' live status (one row per site) and the audit entry of each post, in one transaction."""

    def _status(self, row: Sequence[Any]) -> LiveStatus:
        return live_status_of(row, self.db.dialect)

    def put(self, status: LiveStatus, action: str, changes: dict[str, Any]) -> int:
        """Write a site's status (replacing any) and append ``changes`` to its audit trail; the entry's id."""
        with self.db.writing() as ex:
            run(self.db, ex, "upsert_live_status", site_id=status.site_id, state=status.state,
                seats_free=status.seats_free, capacity=status.capacity, posted_at=utc(status.posted_at),
                expires_at=utc(status.expires_at), posted_by=status.posted_by)
            row = run(self.db, ex, "insert_change_at", site_id=status.site_id, actor=status.posted_by,
                      at=utc(status.posted_at), action=action, changes=changes).fetchone()
        return int(row[0])

    def for_sites(self, site_ids: Sequence[str]) -> dict[str, LiveStatus]:
        """The stored status of each of these sites that has one (in force or not)."""
        out: dict[str, LiveStatus] = {}
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                out.update({r[0]: self._status(r) for r in run(self.db, ex, "live_statuses_for",
                                                                ids=chunk).fetchall()})
        return out

    def views_for(self, site_ids: Sequence[str], at: dt.datetime, window: dt.timedelta, min_reports: int
                  ) -> tuple[dict[str, LiveStatus], dict[str, MayBeClosed]]:
        """In one trip per chunk: the stored status of each of these sites that has one (in force or not), and
        the sites with at least ``min_reports`` unresolved "closed when I arrived" reports from different
        clients received in the ``window`` before ``at``, none of them before the operator's last post."""
        statuses: dict[str, LiveStatus] = {}
        marks: dict[str, MayBeClosed] = {}
        with self.db.reading() as ex:
            for chunk in chunks(site_ids):
                for row in run(self.db, ex, "live_views_for", ids=chunk, since=utc(at - window), at=utc(at),
                               min_reports=min_reports).fetchall():
                    if row[1] is not None:
                        statuses[row[0]] = self._status(row)
                    else:
                        marks[row[0]] = MayBeClosed(int(row[7]), self.db.dialect.time(row[8]) or at)
        return statuses, marks


class Feed(Repository):
    """The partners' change feed: append-only entries numbered by the head row (see
    :mod:`geoservice.services.feed` for why not a sequence)."""

    def append(self, changes: Sequence[tuple[str, str]], at: dt.datetime,
               render: Callable[[list[str]], Mapping[str, dict[str, Any] | None]]) -> list[int]:
        """Append one entry per ``(site id, kind)`` in the caller's transaction (or a new one), numbered after
        taking the head row's lock; ``render`` (called after the lock, so it reads every change committed before)
        gives each site's resulting feature. Returns the cursors."""
        if not changes:
            return []
        with self.db.writing() as ex:
            last = int(run(self.db, ex, "claim_feed_cursors", n=len(changes)).fetchone()[0])
            features = render(list(dict.fromkeys(sid for sid, _ in changes)))
            first = last - len(changes) + 1
            for i, (sid, kind) in enumerate(changes):
                run(self.db, ex, "insert_feed_entry", seq=first + i, site_id=sid, alert_id=None, kind=kind,
                    at=utc(at), feature=None if kind == "removed" else features.get(sid))
        return list(range(first, last + 1))

    def append_alert(self, alert_id: int, kind: str, at: dt.datetime, alert: dict[str, Any] | None) -> int:
        """Append one entry about weather alert ``alert_id`` (its resulting public object; None once deleted) in
        the caller's transaction, after its other writes (the head lock is the last one taken). Its cursor."""
        with self.db.writing() as ex:
            seq = int(run(self.db, ex, "claim_feed_cursors", n=1).fetchone()[0])
            run(self.db, ex, "insert_feed_entry", seq=seq, site_id=None, alert_id=int(alert_id), kind=kind,
                at=utc(at), feature=alert)
        return seq

    def _entries(self, rows: Sequence[Sequence[Any]]) -> list[FeedEntry]:
        return [FeedEntry(int(seq), sid, kind, self.db.dialect.time(at) or _now(),
                          None if feature is None else self.db.dialect.json(feature),
                          None if alert_id is None else int(alert_id))
                for seq, sid, kind, at, feature, alert_id in rows]

    def page(self, after: int, limit: int) -> list[FeedEntry]:
        """Up to ``limit`` entries after cursor ``after``, in cursor order."""
        return self._entries(self._all("feed_page", after=int(after), limit=int(limit)))

    def range(self, after: int, through: int) -> list[FeedEntry]:
        """The entries after cursor ``after`` up to and including ``through``, in cursor order."""
        return self._entries(self._all("feed_range", after=int(after), through=int(through)))

    def head(self) -> tuple[int, dt.datetime | None]:
        """The last cursor handed out (0 before any change) and when that change was made."""
        row = self._one("feed_head")
        return (int(row[0]), self.db.dialect.time(row[1])) if row else (0, None)


@dataclasses.dataclass(frozen=True)
class LeasedHook:
    """What a delivery worker holding a webhook's lease needs: where to send, the secret and the cursor state."""

    id: int
    url: str
    secret: str
    delivered_through: int
    batch_through: int | None
    attempts: int
    next_attempt_at: dt.datetime | None


class Webhooks(Repository):
    """Partners' webhooks (the feed cursor each has been delivered to, its open batch and retries) and their dead
    letters. Secrets are read only by :meth:`lease`, for signing."""

    def _hook(self, row: Sequence[Any]) -> Webhook:
        hid, url, by, created, through, batch, attempts, next_at, error, success, dead = row[:11]
        t = self.db.dialect.time
        return Webhook(int(hid), url, by, t(created) or _now(), int(through), None if batch is None else int(batch),
                       int(attempts), t(next_at), error, t(success), int(dead))

    def _dead(self, row: Sequence[Any]) -> DeadLetter:
        did, hid, first, last, attempts, error, failed, requested, replayed = row[:9]
        t = self.db.dialect.time
        return DeadLetter(int(did), int(hid), int(first), int(last), int(attempts), error, t(failed) or _now(),
                          t(requested), t(replayed))

    def create(self, url: str, secret: str, created_by: str, through: int, now: dt.datetime) -> Webhook:
        """A new webhook that is sent the feed entries after cursor ``through``."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "insert_webhook", url=url, secret=secret, created_by=created_by, now=utc(now),
                      through=int(through)).fetchone()
        return self._hook(row)

    def all(self) -> list[Webhook]:
        """Every webhook, oldest first."""
        return [self._hook(r) for r in self._all("webhooks_all")]

    def get(self, hook_id: int) -> Webhook | None:
        """One webhook, or None."""
        row = self._one("webhook_by_id", id=int(hook_id))
        return self._hook(row) if row else None

    def delete(self, hook_id: int) -> bool:
        """Remove a webhook and its dead letters; False when there was none."""
        with self.db.writing() as ex:
            return bool(run(self.db, ex, "delete_webhook", id=int(hook_id)).rowcount)

    def due(self, head: int, now: dt.datetime) -> list[int]:
        """Ids of the webhooks with something to send at ``now`` (feed entries up to ``head``, or replays)."""
        return [int(r[0]) for r in self._all("webhooks_due", head=int(head), now=utc(now))]

    def lease(self, hook_id: int, now: dt.datetime, until: dt.datetime) -> LeasedHook | None:
        """Take the hook's delivery lease until ``until`` (None when another worker holds it, or it is gone)."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "lease_webhook", id=int(hook_id), now=utc(now), until=utc(until)).fetchone()
        if row is None:
            return None
        secret, url, through, batch, attempts, next_at = row
        return LeasedHook(int(hook_id), url, secret, int(through), None if batch is None else int(batch),
                          int(attempts), self.db.dialect.time(next_at))

    def open_batch(self, hook_id: int, through: int) -> None:
        """Fix the end of the batch about to be sent, so retries send the same entries."""
        with self.db.writing() as ex:
            run(self.db, ex, "open_webhook_batch", id=int(hook_id), through=int(through))

    def delivered(self, hook_id: int, through: int, now: dt.datetime) -> None:
        """The batch up to ``through`` was accepted: move the cursor, reset the retries."""
        with self.db.writing() as ex:
            run(self.db, ex, "webhook_delivered", id=int(hook_id), through=int(through), now=utc(now))

    def failed(self, hook_id: int, attempts: int, next_attempt: dt.datetime, error: str) -> None:
        """The batch failed again: when to try next, and why."""
        with self.db.writing() as ex:
            run(self.db, ex, "webhook_failed", id=int(hook_id), attempts=int(attempts), next=utc(next_attempt),
                error=error)

    def release(self, hook_id: int) -> None:
        """Give the lease back without a change."""
        with self.db.writing() as ex:
            run(self.db, ex, "webhook_release", id=int(hook_id))

    def give_up(self, hook_id: int, first_seq: int, last_seq: int, attempts: int, error: str,
                now: dt.datetime) -> None:
        """Move the batch to the dead letters and the cursor past it, in one transaction."""
        with self.db.writing() as ex:
            run(self.db, ex, "insert_dead_letter", webhook_id=int(hook_id), first_seq=int(first_seq),
                last_seq=int(last_seq), attempts=int(attempts), error=error, now=utc(now))
            run(self.db, ex, "webhook_given_up", id=int(hook_id), through=int(last_seq), error=error)

    def dead_letters(self, hook_id: int) -> list[DeadLetter]:
        """A webhook's dead letters, oldest first."""
        return [self._dead(r) for r in self._all("dead_letters_of", webhook_id=int(hook_id))]

    def dead_letter(self, hook_id: int, letter_id: int) -> DeadLetter | None:
        """One dead letter of a webhook, or None."""
        row = self._one("dead_letter_by_id", webhook_id=int(hook_id), id=int(letter_id))
        return self._dead(row) if row else None

    def request_replay(self, hook_id: int, letter_id: int, now: dt.datetime) -> bool:
        """Ask the delivery worker to send a dead letter again; False when there is no such letter."""
        with self.db.writing() as ex:
            return bool(run(self.db, ex, "request_replay", webhook_id=int(hook_id), id=int(letter_id),
                            now=utc(now)).rowcount)

    def replays_requested(self, hook_id: int) -> list[DeadLetter]:
        """The hook's dead letters an admin asked to replay, oldest first."""
        return [self._dead(r) for r in self._all("replays_requested", webhook_id=int(hook_id))]

    def replay_tried(self, letter_id: int, now: dt.datetime, error: str | None) -> None:
        """A replay was sent: replayed at ``now`` when ``error`` is None, else the new error."""
        with self.db.writing() as ex:
            run(self.db, ex, "replay_tried", id=int(letter_id), replayed_at=None if error else utc(now), error=error)


class Calendars(Repository):
    """China's official holiday schedule, one year at a time."""

    def load_year(self, year: int, days: Sequence[CalendarDay], source: str) -> None:
        """Replace one year's schedule in one transaction."""
        with self.db.writing() as ex:
            run(self.db, ex, "delete_calendar_year", first=dt.date(year, 1, 1), after=dt.date(year + 1, 1, 1))
            for d in days:
                run(self.db, ex, "insert_calendar_day", day=d.day, type=d.type, name_en=d.name_en, name_zh=d.name_zh)
            run(self.db, ex, "upsert_calendar_year", year=year, source=source, now=_now())

    def calendar(self) -> Calendar:
        """The loaded schedule."""
        with self.db.reading() as ex:
            years = [int(r[0]) for r in run(self.db, ex, "calendar_years").fetchall()]
            days = [CalendarDay(self.db.dialect.date(d), t, en, zh)
                    for d, t, en, zh in run(self.db, ex, "calendar_days").fetchall()]
        return Calendar.from_days(years, days)


class SqliteDialect(Dialect):
    """SQLite (embedded store): ``:name`` as is; times and dates as ISO text, JSON as text, booleans as 0/1."""

    name = "sqlite"

    def placeholders(self, sql: str) -> str:
        return sql

    def value(self, v: Any) -> Any:
        if isinstance(v, dt.datetime):
            return v.isoformat()
        if isinstance(v, dt.date):
            return v.isoformat()
        if isinstance(v, (dict, list)):
            return json.dumps(v, ensure_ascii=False)
        if isinstance(v, bool):
            return int(v)
        return v

    def time(self, v: Any) -> dt.datetime | None:
        return dt.datetime.fromisoformat(v) if v else None

    def date(self, v: Any) -> dt.date:
        return dt.date.fromisoformat(v)

    def json(self, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v


class PostgresDialect(Dialect):
    """PostgreSQL through psycopg 3: ``%(name)s`` parameters, native timestamptz, date and jsonb."""

    name = "postgresql"

    def placeholders(self, sql: str) -> str:
        return sqlfiles.pyformat(sql)

    def value(self, v: Any) -> Any:
        if isinstance(v, (dict, list)):
            from psycopg.types.json import Jsonb

            return Jsonb(v)
        return v

    def time(self, v: Any) -> dt.datetime | None:
        return v if v is None or isinstance(v, dt.datetime) else dt.datetime.fromisoformat(str(v))

    def date(self, v: Any) -> dt.date:
        return v if isinstance(v, dt.date) else dt.date.fromisoformat(str(v))

    def json(self, v: Any) -> Any:
        return json.loads(v) if isinstance(v, str) else v


class Alerts(Repository):
    """Weather alerts declared by admins (issue 14 item 1); writes join the caller's transaction."""

    def _alert(self, row: Sequence[Any]) -> Alert:
        aid, atype, level, districts, start, end, by, created = row[:8]
        t = self.db.dialect.time
        return Alert(int(aid), atype, level, tuple(json.loads(districts)), t(start) or _now(), t(end) or _now(),
                     by or "", t(created))

    def add(self, atype: str, level: str, districts: Sequence[str], start: dt.datetime, end: dt.datetime,
            created_by: str) -> Alert:
        """Store a new alert; returns it with its id."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "insert_alert", type=atype, level=level,
                      districts=json.dumps(sorted(set(districts))), start_at=utc(start), end_at=utc(end),
                      created_by=created_by, now=_now()).fetchone()
        return self._alert(row)

    def get(self, alert_id: int) -> Alert | None:
        """One alert by id."""
        row = self._one("get_alert", id=int(alert_id))
        return self._alert(row) if row else None

    def overlapping(self, start: dt.datetime, end: dt.datetime) -> list[Alert]:
        """Alerts in force at some moment of ``[start, end)``, by start."""
        return [self._alert(r) for r in self._all("alerts_overlapping", start=utc(start), end=utc(end))]

    def set_end(self, alert_id: int, end: dt.datetime) -> Alert | None:
        """Move an alert's end; the changed alert (None when there is none with this id)."""
        with self.db.writing() as ex:
            row = run(self.db, ex, "set_alert_end", id=int(alert_id), end_at=utc(end)).fetchone()
        return self._alert(row) if row else None

    def delete(self, alert_id: int) -> None:
        """Remove an alert."""
        with self.db.writing() as ex:
            run(self.db, ex, "delete_alert", id=int(alert_id))
