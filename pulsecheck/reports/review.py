"""A review's filled template and audit trail as Markdown (`review export --format md`). Every data field goes
through `md_escape` (reports/markdown.py): a review's text is typed by people, and its export is rendered by
others."""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from pulsecheck.humanize import money
from pulsecheck.reports.markdown import md_cell, md_escape
from pulsecheck.reports.scorecard import groups_table, kpi_table, num
from pulsecheck.safetext import strip_controls
from pulsecheck.timeutil import local_minute


def _text(value: Any) -> str:
    """A free-text field as its own paragraph(s), or `_(empty)_`."""
    return md_escape(value, block=True) if value not in (None, "") else "_(empty)_"


def _or_dash(value: Any) -> str:
    return md_escape(value) if value not in (None, "") else "-"


def review_markdown(data: dict[str, Any], tz: tzinfo | None = None) -> str:
    """Markdown of a review dict as built by `workflow.reviews.review_dict`; with `tz` (what a person reads on a
    terminal) times are in that zone to the minute, else ISO in UTC as stored (exports)."""
    if tz is not None:
        data = _local_times(data, tz)
    lines = _header(data)
    if "account_context" in data:
        lines += _account(data["account_context"]) + _baseline(data["baseline"])
    lines += _goals(data) + _risks(data) + _closing(data)
    if "history" in data:
        lines += _audit_trail(data["history"])
    return "\n".join(lines) + "\n"


def _local_times(data: dict[str, Any], tz: tzinfo) -> dict[str, Any]:
    """The review dict with its moments (due, signatures, audit rows) as minutes in `tz`."""
    signatures = {role: sig | {"at": local_minute(sig["at"], tz) if sig["at"] else sig["at"]}
                  for role, sig in data["signatures"].items()}
    changed = data | {"due_at": local_minute(data["due_at"], tz), "signatures": signatures}
    if "history" in data:
        changed["history"] = [event | {"at": local_minute(event["at"], tz)} for event in data["history"]]
    return changed


def _header(data: dict[str, Any]) -> list[str]:
    """Title, state and people, baseline score."""
    base = data["baseline"]
    md = md_escape
    return [
        f"# Health review {data['id']}: {md(data['account_name'])} ({md(data['account'])})",
        "",
        f"- State: **{md(data['state'])}** · kind: {md(data['kind'])} · priority: {md(data['priority'])}",
        f"- Reviewer: {md(data['reviewer'])} · approver: {_or_dash(data['approver'])}"
        f" · due: {_or_dash(data['due_at'])}",
        f"- Baseline score: {_or_dash(base['score'])} ({md(base['bucket'] or 'no bucket')})",
        "",
    ]


def _account(context: dict[str, Any] | None) -> list[str]:
    """The account as it is now: what a reader needs beside the review."""
    if context is None:
        return []
    current = context["current"]
    when = f" as of {md_escape(current['as_of'][:10])}" if current["as_of"] else ""
    return [
        "## Account",
        "",
        f"- Segment: {_or_dash(context['segment'])} · ARR: {money(context['arr'])}"
        f" · renewal: {_or_dash(context['renewal_date'])} · owner: {_or_dash(context['owner'])}",
        f"- Current score: {num(current['score'])} ({md_escape(current['bucket'] or 'no bucket')}){when}",
        "",
    ]


def _baseline(base: dict[str, Any]) -> list[str]:
    """The scorecard the review was opened on: score, areas of concern and strengths, groups, the KPI table."""
    card = base.get("scorecard")
    lines = ["## Baseline scorecard", ""]
    if card is None:
        return lines + ["_No scorecard baseline_ (opened before reviews carried one, or on no score snapshot).", ""]
    provisional = " provisional" if card["provisional"] else ""
    lines += [
        f"- As of: {md_escape(card['as_of'][:10])} (model {_or_dash(card['model_version'])})",
        f"- Score: {num(card['score'])} ({md_escape(card['bucket'] or 'no bucket')}){provisional}",
        f"- Areas of concern: {md_cell(card['concerns']) if card['concerns'] else 'none'}",
        f"- Strengths: {md_cell(card['strengths']) if card['strengths'] else 'none'}",
        "",
    ]
    if card["groups"]:
        lines += [*groups_table(card["groups"]), ""]
    return lines + [*kpi_table(card["kpis"], rating="status"), ""]


def _goals(data: dict[str, Any]) -> list[str]:
    """Goals and progress."""
    return [
        "## Account goals",
        "",
        _text(data["account_goals"]),
        "",
        "## Goal progress summary",
        "",
        _text(data["goal_summary"]),
        "",
    ]


def _risks(data: dict[str, Any]) -> list[str]:
    """Each risk with its table of mitigation actions."""
    lines = ["## Risks", ""]
    if not data["risks"]:
        lines += ["_(none)_", ""]
    md = md_escape
    for risk in data["risks"]:
        lines += [
            f"### Risk {risk['number']}: {md(risk['description'])}",
            "",
            f"- Category: {md(risk['category'])} · severity: {md(risk['severity'])}",
            f"- Evidence: {_inline_or_empty(risk['evidence'])}",
            f"- Impact: {_inline_or_empty(risk['impact'])}",
            "",
            "| # | action | owner | due | success criteria | status |",
            "|---|---|---|---|---|---|",
        ]
        for action in (a for a in data["actions"] if a["risk"] == risk["number"]):
            cells = ("number", "description", "owner", "due_date", "success_criteria", "status")
            lines.append("| " + " | ".join(md_cell(action[key]) for key in cells) + " |")
        lines.append("")
    return lines


def _inline_or_empty(value: Any) -> str:
    """A field inside a list item: on one line, or `_(empty)_`."""
    return md_escape(value) if value not in (None, "") else "_(empty)_"


def _closing(data: dict[str, Any]) -> list[str]:
    """Assessment, next review date, comments, signatures and any signature problem."""
    lines = [
        "## Overall assessment",
        "",
        _text(data["overall_assessment"]),
        "",
        f"Next review date: {_or_dash(data['next_review_date'])}",
        "",
        "## Employee comments",
        "",
        _text(data["employee_comments"]),
        "",
        "## Manager comments",
        "",
        _text(data["manager_comments"]),
        "",
        "## Signatures",
        "",
    ]
    for role, sig in data["signatures"].items():
        signed = (
            f"{md_escape(sig['by'])} at {md_escape(sig['at'])} (sha256 {md_escape(sig['digest'])})"
            if sig["by"]
            else "not signed"
        )
        lines.append(f"- {md_escape(role.capitalize())}: {signed}")
    for problem in data["signature_problems"]:
        lines.append(f"- **Warning:** {md_escape(problem)}")
    return lines


def _audit_trail(history: list[dict[str, Any]]) -> list[str]:
    """The audit rows as a table."""
    lines = [
        "",
        "## Audit trail",
        "",
        "| at | event | from | to | actor | cause | comment |",
        "|---|---|---|---|---|---|---|",
    ]
    for event in history:
        cells = [md_cell(event[key]) for key in ("at", "event", "from", "to", "actor", "cause")]
        comment = md_escape(event["comment"])  # an empty comment stays empty, as before
        lines.append("| " + " | ".join(cells) + f" | {comment} |")
    return lines


def review_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, no script, nothing fetched) of a review dict as built by
    `workflow.reviews.review_dict` with its context: every value autoescaped, colours through `safe_color`,
    control characters stripped."""
    from pulsecheck.reports.html import content_security_policy, html_environment

    env = html_environment(keep_trailing_newline=True)
    page = env.get_template("review.html.j2").render(r=data, csp=content_security_policy(), num=num, money=money)
    return strip_controls(page)  # it may be printed on a terminal: no escape sequence typed into a field acts
