"""A review's filled template and audit trail as Markdown (`review export --format md`)."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str:
    return str(value) if value not in (None, "") else "_(empty)_"


def review_markdown(data: dict[str, Any]) -> str:
    """Markdown of a review dict as built by `workflow.reviews.review_dict`."""
    lines = _header(data) + _risks(data) + _closing(data)
    if "history" in data:
        lines += _audit_trail(data["history"])
    return "\n".join(lines) + "\n"


def _header(data: dict[str, Any]) -> list[str]:
    """Title, state and people, baseline, goals and progress."""
    base = data["baseline"]
    return [
        f"# Health review {data['id']}: {data['account_name']} ({data['account']})",
        "",
        f"- State: **{data['state']}** · kind: {data['kind']} · priority: {data['priority']}",
        f"- Reviewer: {data['reviewer']} · approver: {data['approver'] or '-'} · due: {data['due_at'] or '-'}",
        f"- Baseline score: {base['score'] if base['score'] is not None else '-'} ({base['bucket'] or 'no bucket'})",
        "",
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
    for risk in data["risks"]:
        lines += [
            f"### Risk {risk['number']}: {risk['description']}",
            "",
            f"- Category: {risk['category']} · severity: {risk['severity']}",
            f"- Evidence: {_text(risk['evidence'])}",
            f"- Impact: {_text(risk['impact'])}",
            "",
            "| # | action | owner | due | success criteria | status |",
            "|---|---|---|---|---|---|",
        ]
        for action in (a for a in data["actions"] if a["risk"] == risk["number"]):
            lines.append(
                f"| {action['number']} | {action['description']} | {action['owner'] or '-'} | "
                f"{action['due_date'] or '-'} | {action['success_criteria'] or '-'} | {action['status']} |"
            )
        lines.append("")
    return lines


def _closing(data: dict[str, Any]) -> list[str]:
    """Assessment, next review date, comments, signatures and any signature problem."""
    lines = [
        "## Overall assessment",
        "",
        _text(data["overall_assessment"]),
        "",
        f"Next review date: {data['next_review_date'] or '-'}",
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
        signed = f"{sig['by']} at {sig['at']} (sha256 {sig['digest']})" if sig["by"] else "not signed"
        lines.append(f"- {role.capitalize()}: {signed}")
    for problem in data["signature_problems"]:
        lines.append(f"- **Warning:** {problem}")
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
        lines.append(
            f"| {event['at']} | {event['event']} | {event['from'] or '-'} | {event['to']} | "
            f"{event['actor']} | {event['cause']} | {event['comment'] or ''} |"
        )
    return lines
