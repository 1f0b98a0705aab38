"""The navigation bar's counts of what waits for the signed-in user (the inbox service's totals)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulsecheck.web.context import Web


def nav_counts(web: Web, user: str) -> dict[str, Any]:
    """Each inbox section's total for `user`, and their sum (read in a short read-only session)."""
    from pulsecheck.workflow.inbox import inbox

    now = web.now()
    with web.database.session() as session:
        box = inbox(session, user, now, now.astimezone(web.settings.tz).date(), limit=1)
    counts: dict[str, Any] = {section.key: section.page.total for section in box.sections}
    counts["total"] = box.total
    return counts
