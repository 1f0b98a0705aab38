"""A review's filled template and audit trail as Markdown (`review export --format md`)."""

from __future__ import annotations

from typing import Any


def _text(value: Any) -> str:
    return str(value) if value not in (None, "") else "_(empty)_"


def review_markdown(data: dict[str, Any]) -> str:
    """Markdown of a review dict as built by `workflow.review.review_dict`."""
    base = data["baseline"]
    lines = [
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
        "## Risks",
        "",
    ]
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
    lines += [
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
    if "history" not in data:
        return "\n".join(lines) + "\n"
    lines += [
        "",
        "## Audit trail",
        "",
        "| at | event | from | to | actor | cause | comment |",
        "|---|---|---|---|---|---|---|",
    ]
    for event in data["history"]:
        lines.append(
            f"| {event['at']} | {event['event']} | {event['from'] or '-'} | {event['to']} | "
            f"{event['actor']} | {event['cause']} | {event['comment'] or ''} |"
        )
    return "\n".join(lines) + "\n"
