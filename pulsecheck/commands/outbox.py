"""outbox: list, dispatch, retry."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import App, emit_json, json_option, paged, pass_app, print_page, whose
from pulsecheck.errors import InputError
from pulsecheck.vocab import NOTIFICATION_SORTS

if TYPE_CHECKING:
    from pulsecheck.storage.paging import PageRequest


@click.group()
def outbox() -> None:
    """Notifications waiting for, or done with, delivery."""


@outbox.command("list", epilog="Example: pulsecheck outbox list --failed --limit 20")
@click.option("--failed", is_flag=True, help="Only failed ones (same as --status failed).")
@click.option("--status", metavar="S", help="Only this status: pending, sent, failed, held (for a digest) or digested.")
@click.option("--recipient", metavar="U", help="Only notifications to U.")
@click.option("--mine", is_flag=True, help="Only notifications to me.")
@paged(NOTIFICATION_SORTS)
@json_option
@pass_app
def outbox_list(
    app: App, failed: bool, status: str | None, recipient: str | None, mine: bool, page: PageRequest, as_json: bool
) -> None:
    """List notifications, newest first."""
    from pulsecheck.notifications.outbox_views import notification_page

    if failed and status not in (None, "failed"):
        raise InputError(f"--failed and --status {status} contradict each other")
    tz = app.settings.tz
    with app.reading() as connection:
        found = notification_page(
            connection, page, "failed" if failed else status, whose(app, connection, recipient, mine, "--recipient")
        )
    print_page(
        found, as_json,
        lambda n: (n["id"], n["kind"], n["channel"], n["recipient"], n["status"], n["attempts"],
                   h.when(n["next_attempt_at"], tz), _cut(n["last_error"], 60),
                   _cut(n["subject"].removeprefix("[pulsecheck] "), 60)),
        ["id", "kind", "channel", "recipient", "status", "tries", "next try", "last error", "subject"],
    )


@outbox.command("dispatch")
@click.option("--limit", type=click.IntRange(min=1), metavar="N", help="Send at most N notifications.")
@json_option
@pass_app
def outbox_dispatch(app: App, limit: int | None, as_json: bool) -> None:
    """Deliver the notifications due now, in one pass.

    Each failure is listed; the exit code stays 0 (failed ones show in `outbox list --failed`).
    """
    from pulsecheck.notifications.dispatch import dispatch

    with _log_channel_to_stderr():
        report = dispatch(app.db, app.settings, app.now(), limit)
    if note := app.settings.log_channel_note():
        click.echo(note, err=True)
    if as_json:
        emit_json(report.to_dict())
        return
    total = report.sent + report.retried + report.failed
    click.echo(f"{total} due: {report.sent} sent, {report.retried} to retry, {report.failed} failed")
    for name, counts in sorted(report.channels.items()):
        click.echo(f"  {name}: {counts.sent} sent, {counts.retried} to retry, {counts.failed} failed")
    for p in report.problems:
        when = f"retry at {h.when(p.next_attempt_at, app.settings.tz)}" if p.next_attempt_at else "failed"
        click.echo(f"#{p.id} {p.channel} to {p.recipient}: {when}: {p.error}")


@outbox.command("retry")
@click.argument("notification_ids", metavar="ID...", type=int, nargs=-1, required=True)
@pass_app
def outbox_retry(app: App, notification_ids: tuple[int, ...]) -> None:
    """Queue failed notifications again, attempts reset.

    Refused (exit 1, nothing changed) unless every ID is a failed notification.
    """
    from pulsecheck.notifications.dispatch import retry_notification

    with app.transaction() as session:
        app.require(session, "outbox.retry")
        for notification_id in dict.fromkeys(notification_ids):
            retry_notification(session, notification_id, app.now())
    for notification_id in dict.fromkeys(notification_ids):
        click.echo(f"notification {notification_id} queued again")


@contextmanager
def _log_channel_to_stderr() -> Iterator[None]:
    """While the CLI dispatches, the `log` channel prints to stderr (unless logging is set up already)."""
    import logging

    from pulsecheck.notifications.channels.log import LOGGER_NAME

    logger = logging.getLogger(LOGGER_NAME)
    if logger.handlers or logging.getLogger().handlers:
        yield
        return
    handler = logging.StreamHandler()  # sys.stderr as it is now (click swaps it in tests)
    handler.setFormatter(logging.Formatter("%(message)s"))
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def _cut(text: Any, width: int) -> str:
    text = " ".join(str(text or "").split())
    return str(text) if len(text) <= width else text[: width - 1] + "…"


COMMANDS = [outbox]
