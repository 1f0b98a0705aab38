"""The outbox dispatcher: delivers due notifications to their channels, with retries and backoff.

One pass walks the due rows (pending, `next_attempt_at <= now`) in id order. Each row is claimed before it
is sent, so two dispatchers never both send it, and its outcome is committed before the next row, so a
crash loses nothing (the row in flight stays pending and goes out again). PostgreSQL claims with
`SELECT ... FOR UPDATE SKIP LOCKED` held until the outcome commits (a second dispatcher skips the row);
SQLite claims under its write lock (`BEGIN IMMEDIATE`) with a lease, so that the lock is not held while a
channel waits on the network.

Settings (`[notifications]`): `retry_base` (1m), `retry_max` (1h), `max_attempts` (5); each channel reads
its own table, `[notifications.<channel>]`, and its secrets from the environment variables that table names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Row

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.notifications.channels.base import Channel, DeliveryError
from pulsecheck.notifications.channels.webhook import WebhookChannel
from pulsecheck.notifications.claims import LEASE, NEXT_SHARED_WEBHOOK, Fence, LeaseClaims, LockClaims
from pulsecheck.notifications.message import Message
from pulsecheck.storage.models import Notification

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

__all__ = ["LEASE", "DispatchReport", "RetryPolicy", "dispatch"]
BATCH = 16  # messages per webhook post at most (Slack takes 50 blocks; each message makes three)
_ERROR_LIMIT = 2000  # characters of an error kept in `last_error`
# Built once: constructing statements per row costs more than SQLite's own work on them.

@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff: `base * 2**(attempts-1)`, capped at `cap`; `max_attempts` tries in all."""

    base: timedelta = timedelta(minutes=1)
    cap: timedelta = timedelta(hours=1)
    max_attempts: int = 5

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        """The policy of `[notifications]` (validated when the settings were loaded)."""
        notifications = settings.notifications
        return cls(notifications.retry_base, notifications.retry_max, notifications.max_attempts)

    def delay(self, attempts: int, retry_after: float | None = None) -> timedelta:
        """The wait after the `attempts`-th failed attempt; a receiver's Retry-After is waited at least."""
        exponent = min(max(attempts - 1, 0), 32)  # 2**32 minutes is past any sane cap
        wait: timedelta = min(self.cap, self.base * (2**exponent))
        if retry_after is not None:
            wait = max(wait, timedelta(seconds=retry_after))
        return wait


@dataclass
class ChannelCounts:
    """Outcomes of one pass for one channel."""

    sent: int = 0
    retried: int = 0
    failed: int = 0


@dataclass(frozen=True)
class Problem:
    """A row that was not sent in this pass: `status` pending (will be retried) or failed (given up)."""

    id: int
    channel: str
    recipient: str
    status: str
    attempts: int
    next_attempt_at: datetime | None
    error: str


@dataclass
class DispatchReport:
    """What one pass did: totals, the same per channel, and every row that was not sent."""

    now: datetime
    sent: int = 0
    retried: int = 0
    failed: int = 0
    held: int = 0  # kept for a digest (alert budget spent, or the recipient's daily digest)
    digests: int = 0  # digests queued by this pass
    channels: dict[str, ChannelCounts] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)

    def add(self, row: Row[Any], outcome: _Outcome) -> None:
        """Count one row's outcome; a row that was not sent also goes into `problems`."""
        name = {"sent": "sent", "pending": "retried", "failed": "failed"}[outcome.status]
        counts = self.channels.setdefault(row.channel, ChannelCounts())
        setattr(counts, name, getattr(counts, name) + 1)
        setattr(self, name, getattr(self, name) + 1)
        if outcome.status != "sent":
            problem = Problem(
                row.id, row.channel, row.recipient, outcome.status, outcome.attempts, outcome.next_attempt_at,
                outcome.error or "",
            )
            self.problems.append(problem)

    def to_dict(self) -> dict[str, Any]:
        """The `outbox dispatch --json` shape."""
        return {
            "now": self.now.isoformat(),
            "sent": self.sent,
            "retried": self.retried,
            "failed": self.failed,
            "held": self.held,
            "digests": self.digests,
            "channels": {name: vars(c).copy() for name, c in sorted(self.channels.items())},
            "problems": [
                {
                    "id": p.id,
                    "channel": p.channel,
                    "recipient": p.recipient,
                    "status": p.status,
                    "attempts": p.attempts,
                    "next_attempt_at": p.next_attempt_at.isoformat() if p.next_attempt_at else None,
                    "error": p.error,
                }
                for p in self.problems
            ],
        }


class _Channels:
    """Each channel built once per pass from `[notifications.<name>]`; a bad one remembers its error."""

    def __init__(self, settings: Settings) -> None:
        self.notifications = settings.notifications
        self.secrets = settings.secrets
        self.built: dict[str, Channel | InputError] = {}

    def get(self, name: str) -> Channel | InputError:
        if name not in self.built:
            self.built[name] = self._build(name)
        return self.built[name]

    def _build(self, name: str) -> Channel | InputError:
        from pulsecheck.notifications.channels import build_channel

        try:
            return build_channel(name, self.notifications.channel_options(name), self.secrets)
        except InputError as exc:
            return exc


@dataclass(frozen=True)
class _Outcome:
    """What one attempt did to a row: sent, pending (retry at `next_attempt_at`) or failed."""

    status: str
    attempts: int
    error: str | None = None
    next_attempt_at: datetime | None = None

    def values(self, now: datetime) -> dict[str, Any]:
        if self.status == "sent":
            return {"status": "sent", "attempts": self.attempts, "sent_at": now}
        error = (self.error or "")[:_ERROR_LIMIT]
        if self.status == "failed":
            return {"status": "failed", "attempts": self.attempts, "last_error": error}
        return {"attempts": self.attempts, "next_attempt_at": self.next_attempt_at, "last_error": error}


def dispatch(
    database: Database,
    settings: Settings,
    now: datetime,
    limit: int | None = None,
    fence: Fence | None = None,
) -> DispatchReport:
    """Deliver the notifications due at `now` (at most `limit`), committing each outcome as it happens.

    `fence(conn)` (a scheduler leader's) runs before each claim and outcome commits, in their transaction, and
    raises when this process may no longer write: a deposed leader's dispatcher commits nothing more."""
    from pulsecheck.notifications.digest import Budget, make_digests

    policy = RetryPolicy.from_settings(settings)
    channels = _Channels(settings)
    report = DispatchReport(now)
    report.digests = make_digests(database, settings, now)  # queued first, so that this pass sends them
    budget = Budget(settings, now)
    last_id = 0  # each row at most once per pass, and no rescans of rows already done
    with database.engine.connect() as conn:
        claims = LeaseClaims(conn, fence) if conn.dialect.name == "sqlite" else LockClaims(conn, fence)
        while limit is None or report.sent + report.retried + report.failed < limit:
            row = claims.next(last_id, now)
            if row is None:
                break
            last_id = row.id
            if budget.holds(conn, row):
                claims.record(row, {"status": "held", "attempts": row.attempts})
                report.held += 1
                continue
            channel = channels.get(row.channel)
            group = [row]
            if isinstance(channel, WebhookChannel) and channel.url and not _message(row).recipient_webhook:
                done = report.sent + report.retried + report.failed
                room = BATCH - 1 if limit is None else min(BATCH, limit - done) - 1
                group += _more_for(claims, conn, budget, row, now, report, room)
            try:
                outcome = _attempt_many(group, channel, policy, now)
            except BaseException:  # interrupted while sending: the rows go back as they were
                claims.release(group)
                raise
            claims.record_many([(member, outcome.values(now)) for member in group])
            for member in group:
                report.add(member, outcome)
                if outcome.status == "sent":
                    budget.count(member)
    return report


def _more_for(
    claims: LeaseClaims | LockClaims, conn: Any, budget: Any, first: Row[Any], now: datetime, report: DispatchReport,
    room: int,
) -> list[Row[Any]]:
    """Further due rows for the webhook channel's own URL, claimed to go in one post with `first`; rows the
    budget holds are recorded held (without ending a PostgreSQL claim)."""
    more: list[Row[Any]] = []
    after = first.id
    while len(more) < room:
        row = claims.next(after, now, NEXT_SHARED_WEBHOOK, keep=True)
        if row is None:
            break
        after = row.id
        if budget.holds(conn, row):
            claims.record(row, {"status": "held", "attempts": row.attempts}, commit=False)
            report.held += 1
        else:
            more.append(row)
    return more


def _attempt_many(group: list[Row[Any]], channel: Channel | InputError, policy: RetryPolicy, now: datetime) -> _Outcome:
    """Send claimed rows (several only to a webhook URL: one post); one outcome for all of them."""
    if len(group) == 1 or not isinstance(channel, WebhookChannel):
        return _attempt(group[0], channel, policy, now)
    return _attempt(group[0], channel, policy, now, [_message(row) for row in group])


def _attempt(
    row: Row[Any], channel: Channel | InputError, policy: RetryPolicy, now: datetime, batch: list[Message] | None = None
) -> _Outcome:
    """Send one claimed row (or a `batch` it leads); the outcome says what to write back."""
    if isinstance(channel, InputError):  # bad settings: nothing was attempted, the error says what to fix
        return _Outcome("failed", row.attempts, str(channel))
    attempts = row.attempts + 1
    try:
        if batch is not None and isinstance(channel, WebhookChannel):
            channel.send_many(batch)
        else:
            channel.send(_message(row))
    except DeliveryError as exc:
        if not exc.retryable:
            return _Outcome("failed", attempts, str(exc))
        if attempts >= policy.max_attempts:
            return _Outcome("failed", attempts, f"gave up after {attempts} attempts: {exc}")
        return _Outcome("pending", attempts, str(exc), now + policy.delay(attempts, exc.retry_after))
    except Exception as exc:  # a channel bug must not stop the pass; treat it as a passing problem
        error = f"{type(exc).__name__}: {exc}"
        if attempts >= policy.max_attempts:
            return _Outcome("failed", attempts, f"gave up after {attempts} attempts: {error}")
        return _Outcome("pending", attempts, error, now + policy.delay(attempts))
    return _Outcome("sent", attempts)


def _message(row: Row[Any]) -> Message:
    """The channel-ready message of an outbox row: the recipient's current addresses (those stored at queue
    time only for a recipient who is no longer a user) and the context stored by `enqueue`."""
    payload = row.payload if isinstance(row.payload, dict) else {}
    context = payload.get("context")
    context = dict(context) if isinstance(context, dict) else {}
    if getattr(row, "recipient_is_user", False):
        email, webhook = row.current_email, row.current_webhook
    else:
        email, webhook = payload.get("email"), payload.get("webhook")
    chat = getattr(row, "current_chat_handle", None)
    if chat:
        context["chat_handle"] = chat
    return Message(
        kind=row.kind,
        recipient_name=row.recipient,
        recipient_email=email or None,
        recipient_webhook=webhook or None,
        subject=row.subject,
        body=row.body,
        dedupe_key=row.dedupe_key,
        context=context,
    )


# --- repairing the outbox (for `outbox retry`; `outbox_views` lists it, on Core) ---------------------------------


def retry_notification(session: Session, notification_id: int, now: datetime) -> Notification:
    """Put a failed notification back in the queue, due at `now` with its attempts reset."""
    row = session.get(Notification, notification_id)
    if row is None:
        raise NotFoundError(f"notification {notification_id} does not exist")
    if row.status != "failed":
        raise RefusedError(f"notification {notification_id} is {row.status}, not failed: only failed ones are retried")
    row.status = "pending"
    row.attempts = 0
    row.next_attempt_at = now
    return row
