"""The navigation bar's counts of what waits for the signed-in user (the inbox service's totals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from pulsecheck.web.context import Web
    from pulsecheck.workflow.inbox import Inbox


def nav_counts(web: Web, user: str, session: Session | None = None) -> dict[str, Any]:
    """Each inbox section's total for `user`, and their sum: one query, in the page's own `session` when it has one
    open (no second connection), else in a short read-only session."""
    from pulsecheck.workflow.inbox import inbox_counts

    today = web.now().astimezone(web.settings.tz).date()
    if session is not None:
        return inbox_counts(session, user, today)
    with web.database.session() as own:
        return inbox_counts(own, user, today)


def nav_of(box: Inbox) -> dict[str, Any]:
    """The same counts from an inbox already read (the inbox page's)."""
    counts: dict[str, Any] = {section.key: section.page.total for section in box.sections}
    counts["total"] = box.total
    return counts
