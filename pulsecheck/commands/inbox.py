"""inbox: what waits for the acting user today."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import App, emit_json, json_option, pass_app, render_table, show

if TYPE_CHECKING:
    from pulsecheck.workflow.inbox import Inbox


@click.command(epilog="Example: pulsecheck inbox --limit 5")
@click.option(
    "--limit", type=click.IntRange(min=1), default=10, show_default=True, metavar="N", help="Rows per section."
)
@click.option(
    "--horizon", type=click.IntRange(min=0), default=7, show_default=True, metavar="DAYS",
    help="Mitigation actions due within DAYS (and overdue ones).",
)
@json_option
@pass_app
def inbox(app: App, limit: int, horizon: int, as_json: bool) -> None:
    """What waits for you: drafts to fill, reviews to approve, escalations to acknowledge, mitigation actions
    due, cycle steps and findings."""
    from pulsecheck.workflow.inbox import inbox as find

    now = app.now()
    with app.reading() as connection:
        box = find(connection, app.identity(connection).acting, now, now.astimezone(app.settings.tz).date(),
                   limit=limit, horizon_days=horizon)
    if as_json:
        emit_json(box.to_dict())
    else:
        show(render_inbox(box, app.settings.tz))


_COLUMNS: dict[str, tuple[list[str], Any]] = {
    "drafts": (["review", "account", "prio", "kind", "due"], lambda r, tz: (
        r["review"], r["account"], r["priority"], h.review_kind(r["kind"]), h.when(r["due_at"], tz))),
    "approvals": (["review", "account", "prio", "reviewer", "due"], lambda r, tz: (
        r["review"], r["account"], r["priority"], r["reviewer"], h.when(r["due_at"], tz))),
    "escalations": (["id", "account", "prio", "severity", "rule", "level", "due", "reason"], lambda r, tz: (
        r["escalation"], r["account"], r["priority"], r["severity"], r["rule"], r["level"], h.when(r["due_at"], tz),
        r["reason"])),
    "actions": (["review", "#", "account", "due", "status", "action"], lambda r, tz: (
        r["review"], r["action"], r["account"], r["due_date"] + (" overdue" if r["overdue"] else ""), r["status"],
        r["description"])),
    "cycle_steps": (["cycle", "period", "state", "steps done", "next"], lambda r, tz: (
        r["cycle"], r["period"], r["state"], f"{r['steps_done']}/7", r["next"])),
    "findings": (["finding", "cycle", "kind", "due", "detail"], lambda r, tz: (
        r["finding"], r["cycle"], r["kind"], h.word(r["due"]) + (" overdue" if r["overdue"] else ""), r["detail"])),
}


def render_inbox(box: Inbox, tz: tzinfo) -> str:
    """The inbox as text: a count line, then one table per section that has rows."""
    lines = [f"inbox of {box.user}, {h.when(box.as_of, tz)}: " + (
        ", ".join(f"{s.page.total} {s.title.lower()}" for s in box.sections if s.page.total) or "nothing waiting"
    )]
    for section in box.sections:
        if not section.page.total:
            continue
        headers, row = _COLUMNS[section.key]
        title = f"{section.title} ({section.page.total}; {section.todo})"
        lines.append(render_table([row(item, tz) for item in section.page.items], headers, title).rstrip("\n"))
        if section.page.remaining:
            lines.append(f"  {section.page.remaining:,} more")
    return "\n".join(lines) + "\n"


COMMANDS = [inbox]
