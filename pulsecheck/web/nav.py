"""The navigation bar's counts of what waits for the signed-in user."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pulsecheck.web.context import Web


def nav_counts(web: Web, user: str) -> dict[str, Any]:
    """Drafts, approvals and escalations waiting for `user` (read in a short read-only session)."""
    from pulsecheck.web.inbox_query import plate_counts

    with web.database.session() as session:
        counts = plate_counts(session, user, web.now())
    counts["total"] = sum(counts.values())
    return counts
