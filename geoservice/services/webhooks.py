"""Webhooks for partners (issue 14, item 3): the change feed pushed to a partner's endpoint, in order.

**What a partner gets.** A webhook registered by an admin is sent, in cursor order, batches of the change feed
entries made after its registration (or after a cursor the admin names): the same entries ``GET
/api/v1/changes`` gives, with the cursor to resume from. Each batch is signed and carries an idempotency key
(:mod:`geoservice.webhook_delivery`). A partner that applies each key once, in the order received, holds the
same state as one reading the feed.

**Retries.** A batch's end is fixed at its first attempt, so every retry sends the same entries under the same
key. A failed attempt is retried after ``retry_base_s × 2^(attempts−1)`` seconds (capped at ``retry_cap_s``);
after ``max_attempts`` failures the batch goes to the webhook's dead letters and the webhook moves on to later
changes, so one bad batch (or an endpoint down for days) never holds the feed back for ever. An admin replays a
dead letter (the same entries and key) once the partner is back.

**Who sends.** ``geoservice webhooks deliver`` (a loop, or ``--once`` from cron): any number of such workers may
run; each webhook is leased to one at a time, and a worker that dies loses its lease after ``lease_s``.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import secrets
import time

from geoservice import serialize as S
from geoservice.errors import NotFound
from geoservice.model import DeadLetter, Webhook, encode_cursor
from geoservice.store.relational import Feed, LeasedHook, Webhooks
from geoservice.validation import Problem, ValidationFailed
from geoservice.webhook_delivery import (
    HOOK_HEADER,
    KEY_HEADER,
    SIGNATURE_HEADER,
    DeliveryFailed,
    Sender,
    endpoint_problems,
    post,
    sign,
)


@dataclasses.dataclass(frozen=True)
class DeliveryPolicy:
    """How deliveries are batched, timed out, retried and leased (from the settings)."""

    max_attempts: int = 8
    retry_base_s: float = 30.0
    retry_cap_s: float = 3600.0
    batch_size: int = 100
    timeout_s: float = 10.0
    lease_s: float = 120.0
    allow_local: bool = False
    # Batches one webhook may send in one pass of the worker before the next webhook gets its turn.
    batches_per_pass: int = 20

    def backoff(self, attempts: int) -> dt.timedelta:
        """The wait after the ``attempts``-th failure in a row."""
        return dt.timedelta(seconds=min(self.retry_cap_s, self.retry_base_s * 2 ** (attempts - 1)))


@dataclasses.dataclass
class DeliveryPass:
    """What one pass of the worker did (the CLI prints it)."""

    delivered: int = 0   # batches accepted
    entries: int = 0     # feed entries in them
    failed: int = 0      # attempts that failed and will be retried
    dead: int = 0        # batches moved to the dead letters
    replayed: int = 0    # dead letters replayed with success


def idempotency_key(hook_id: int, first_seq: int, last_seq: int) -> str:
    """The key of one batch: the webhook and the cursors it spans (the same for every retry and replay)."""
    return f"wh{hook_id}-{encode_cursor(first_seq)}-{encode_cursor(last_seq)}"


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class WebhookService:
    """Registering webhooks, their dead letters and replays, and delivering what is due."""

    def __init__(self, hooks: Webhooks, feed: Feed, policy: DeliveryPolicy | None = None, send: Sender = post):
        self.hooks = hooks
        self.feed = feed
        self.policy = policy or DeliveryPolicy()
        self.send = send

    # ---- admins ------------------------------------------------------------------------------------------
    def register(self, url: str, created_by: str, since: int | None = None,
                 now: dt.datetime | None = None) -> tuple[Webhook, str]:
        """A new webhook and its signing secret (shown once). It is sent the entries after cursor ``since``
        (0: the whole history), by default those made from now on; 422 naming ``url`` or ``since``."""
        problems = endpoint_problems(url, self.policy.allow_local, resolve=False)
        head = self.feed.head()[0]
        if since is not None and since > head:
            problems.append(Problem("since", "is not a cursor of this feed"))
        if problems:
            raise ValidationFailed(problems)
        secret = "whsec_" + secrets.token_urlsafe(32)
        hook = self.hooks.create(url, secret, created_by, head if since is None else since, now or _now())
        return hook, secret

    def all(self) -> list[Webhook]:
        """Every webhook."""
        return self.hooks.all()

    def get(self, hook_id: int) -> Webhook:
        """One webhook (``NotFound``)."""
        hook = self.hooks.get(hook_id)
        if hook is None:
            raise NotFound(f"no webhook {hook_id}")
        return hook

    def remove(self, hook_id: int) -> None:
        """Stop deliveries to a webhook and forget it with its dead letters (``NotFound``)."""
        if not self.hooks.delete(hook_id):
            raise NotFound(f"no webhook {hook_id}")

    def dead_letters(self, hook_id: int) -> list[DeadLetter]:
        """A webhook's dead letters, oldest first (``NotFound`` for no such webhook)."""
        self.get(hook_id)
        return self.hooks.dead_letters(hook_id)

    def replay(self, hook_id: int, letter_id: int, now: dt.datetime | None = None) -> DeadLetter:
        """Queue a dead letter to be sent again by the worker (same entries, same key)."""
        self.get(hook_id)
        if not self.hooks.request_replay(hook_id, letter_id, now or _now()):
            raise NotFound(f"webhook {hook_id} has no dead letter {letter_id}")
        letter = self.hooks.dead_letter(hook_id, letter_id)
        assert letter is not None
        return letter

    # ---- the worker ----------------------------------------------------------------------------------------
    def deliver_due(self, now: dt.datetime | None = None) -> DeliveryPass:
        """One pass: every webhook with something due gets its replays and its next batches sent."""
        at = now or _now()
        done = DeliveryPass()
        head = self.feed.head()[0]
        for hook_id in self.hooks.due(head, at):
            leased = self.hooks.lease(hook_id, at, at + dt.timedelta(seconds=self.policy.lease_s))
            if leased is None:  # another worker has it
                continue
            try:
                self._replays(leased, at, done)
                self._batches(leased, head, at, done)
            finally:
                self.hooks.release(hook_id)
        return done

    def run(self, interval_s: float, stop: float | None = None) -> None:
        """Deliver in a loop every ``interval_s`` seconds (until ``time.monotonic()`` passes ``stop``)."""
        while stop is None or time.monotonic() < stop:
            self.deliver_due()
            time.sleep(interval_s)

    def _attempt(self, hook: LeasedHook, first: int, last: int, at: dt.datetime) -> str | None:
        """Send entries ``first..last``; None on success, else the reason."""
        entries = self.feed.range(first - 1, last)
        key = idempotency_key(hook.id, first, last)
        body = S.webhook_body(hook.id, key, entries, encode_cursor(last))
        problems = endpoint_problems(hook.url, self.policy.allow_local)
        if problems:
            return problems[0].reason
        headers = {SIGNATURE_HEADER: sign(hook.secret, int(at.timestamp()), body), KEY_HEADER: key,
                   HOOK_HEADER: str(hook.id)}
        try:
            self.send(hook.url, body, headers, self.policy.timeout_s)
        except DeliveryFailed as exc:
            return str(exc)
        return None

    def _replays(self, hook: LeasedHook, at: dt.datetime, done: DeliveryPass) -> None:
        for letter in self.hooks.replays_requested(hook.id):
            error = self._attempt(hook, letter.first_seq, letter.last_seq, at)
            self.hooks.replay_tried(letter.id, at, error)
            done.replayed += error is None

    def _batches(self, hook: LeasedHook, head: int, at: dt.datetime, done: DeliveryPass) -> None:
        through, batch, attempts = hook.delivered_through, hook.batch_through, hook.attempts
        if hook.next_attempt_at is not None and hook.next_attempt_at > at:
            return  # only a replay was due
        for _ in range(self.policy.batches_per_pass):
            if batch is None:
                if through >= head:
                    return
                batch = min(head, through + self.policy.batch_size)
                self.hooks.open_batch(hook.id, batch)
            error = self._attempt(hook, through + 1, batch, at)
            if error is None:
                self.hooks.delivered(hook.id, batch, at)
                done.delivered += 1
                done.entries += batch - through
                through, batch, attempts = batch, None, 0
                continue
            attempts += 1
            if attempts >= self.policy.max_attempts:
                self.hooks.give_up(hook.id, through + 1, batch, attempts, error, at)
                done.dead += 1
            else:
                self.hooks.failed(hook.id, attempts, at + self.policy.backoff(attempts), error)
                done.failed += 1
            return
