"""The navigation bar's counts of what waits for the signed-in user (the inbox service's totals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulsecheck.web.context import Web
    from pulsecheck.workflow.inbox import Inbox


def nav_counts(web: Web, user: str) -> dict[str, Any]:
    """Each inbox section's total for `user`, and their sum (one query in a short read-only session)."""
    from pulsecheck.workflow.inbox import inbox_counts

    today = web.now().astimezone(web.settings.tz).date()
    with web.database.session() as session:
        return inbox_counts(session, user, today)


def nav_of(box: Inbox) -> dict[str, Any]:
    """The same counts from an inbox already read (the inbox page's)."""
    counts: dict[str, Any] = {section.key: section.page.total for section in box.sections}
    counts["total"] = box.total
    return counts
