"""The change feed for partners (issue 14, item 3): every change to what a partner shows, in a stable order.

**What is written.** Each public change appends one entry per site, in the SAME transaction as the change, so a
rolled-back change leaves none: loads and reloads (``added`` / ``changed``), operators' edits, closures and
verifications (``changed``), a refresh that flags or clears a site's ``hours_problem`` (``changed``), live-status
posts and clears (``live_status``), and declaring, changing or deleting a weather alert (``alert_hours``: one entry
per site whose alert hours the alert triggers, its intervals re-computed in the same transaction; then one entry
about the alert itself, ``alert`` with its resulting public object, or ``alert_removed``). ``removed`` (feature
null) is reserved for site removals, which the service does not have yet: a partner should skip kinds it does not
know. Each site entry carries the site's resulting public
feature (:func:`geoservice.serialize.feed_feature`): the properties of ``GET /api/v1/sites/{id}`` with its closures
and the live status in force at the entry's time (with its ``expires_at``: a partner drops it after that), WGS-84,
without the request-time parts (open state, staleness, report counts, couriers' "may be closed" marks). Not in the
feed: replacing the district layer (the district names features carry) and loading the holiday calendar (which sites
are open at a time); partners re-download after those rare admin operations.

**Why the cursor is safe on PostgreSQL.** A sequence would not do: sequence values are handed out at insert and
commit in any order, so a transaction holding 10 can commit after 11 is visible, and a partner who read 11 and
resumes "after 11" misses 10 forever. Cursors are instead numbered from the single row of ``change_feed_head``:
``UPDATE change_feed_head SET last = last + n RETURNING last`` takes that row's lock until the transaction ends,
and the next writer's UPDATE waits for the commit (or rollback) before numbering its own entries. Hence a cursor
is committed only after every smaller one is, and a reader that sees cursor c sees every entry below c. The lock
is taken as the LAST lock of each writing transaction (after the site rows), so it is held only for the feed
inserts and the commit and cannot take part in a deadlock; the resulting features are read after taking it, so
an entry never carries a state older than an entry before it. SQLite serialises writers already
(``BEGIN IMMEDIATE``); the same statements run there.

**Retention.** Every entry is kept (a few hundred bytes each; a full reload of ~12,000 sites adds ~12,000), so
any cursor ever given stays valid and "no ``since``" replays the whole history to the current state.

Cursors are opaque to partners: the entry number in base 36.
"""
from __future__ import annotations

import dataclasses
import datetime as dt

from geoservice.model import FeedEntry, encode_cursor
from geoservice.store.relational import Feed

MAX_LIMIT = 1000


@dataclasses.dataclass(frozen=True)
class FeedPage:
    """A page of the feed: entries after the cursor asked for, the cursor to resume from and whether more wait."""

    entries: list[FeedEntry]
    next: str
    has_more: bool


class FeedService:
    """Reading the change feed by cursor."""

    def __init__(self, feed: Feed):
        self.feed = feed

    def page(self, since: int, limit: int) -> FeedPage:
        """Entries after ``since`` (0: from the beginning), at most ``limit``; ``ValueError`` for a cursor this
        feed has not handed out yet."""
        head, _ = self.feed.head()
        if since > head:
            raise ValueError("is not a cursor of this feed")
        rows = self.feed.page(since, limit + 1)
        entries = rows[:limit]
        resume = entries[-1].seq if entries else since
        return FeedPage(entries, encode_cursor(resume), len(rows) > limit)

    def head(self) -> tuple[str, dt.datetime | None]:
        """The latest cursor and when its change was made (None before any change): what downloads' ``ETag`` and
        ``Last-Modified`` are derived from."""
        last, at = self.feed.head()
        return encode_cursor(last), at
