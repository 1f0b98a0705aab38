"""The review template as a form: validated input for `review fill` and `review edit`, and its YAML."""

from __future__ import annotations

import re
from datetime import date
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pulsecheck.errors import InputError
from pulsecheck.vocab import RISK_CATEGORIES, SEVERITIES, RiskCategory, Severity

ACTION_STATUSES = ("open", "in_progress", "done", "dropped")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class ActionForm(_Strict):
    description: str = Field(min_length=1)
    owner: str | None = None
    due_date: date | None = None
    success_criteria: str | None = None
    status: Literal["open", "in_progress", "done", "dropped"] = "open"


class RiskForm(_Strict):
    description: str = Field(min_length=1)
    evidence: str | None = None
    category: RiskCategory = "customer"
    severity: Severity = "medium"
    impact: str | None = None
    actions: list[ActionForm] = Field(default_factory=list)


class ReviewForm(_Strict):
    account_goals: str | None = None
    goal_summary: str | None = None
    overall_assessment: str | None = None
    next_review_date: date | None = None
    employee_comments: str | None = None
    manager_comments: str | None = None
    risks: list[RiskForm] | None = None

    @field_validator("next_review_date", mode="before")
    @classmethod
    def _no_datetime(cls, value: Any) -> Any:
        return value.date() if hasattr(value, "date") and callable(value.date) else value


def parse_form(data: Any, source: str) -> ReviewForm:
    """Validate form data; the first problem becomes an InputError naming the file and field."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise InputError(f"{source}: expected a mapping of review fields")
    try:
        return ReviewForm.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(form)"
        extra = ""
        if err["type"] == "extra_forbidden":
            extra = f" (known fields: {', '.join(ReviewForm.model_fields)})" if len(err["loc"]) == 1 else ""
            message = "unknown field"
        else:
            message = err["msg"]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise InputError(f"{source}: {where}: {message}{extra}{more}") from None


_DATE_LINE = re.compile(r"^\s*(?:-\s+)?([A-Za-z_]+):\s*['\"]?(\d{4}-\d{2}-\d{2})['\"]?\s*$")


def bad_date_field(text: str, source: str) -> str | None:
    """The error naming the field and line of the first impossible date in a form's text (`2027-02-30`), which
    the YAML reader reports without the field; None when every date is a real one."""
    for number, line in enumerate(text.splitlines(), 1):
        match = _DATE_LINE.match(line)
        if match:
            try:
                date.fromisoformat(match.group(2))
            except ValueError as exc:
                return f"{source}:{number}: {match.group(1)}: {match.group(2)} is not a date ({exc})"
    return None


ERROR_MARK = "# error: "


def with_error(text: str, message: str) -> str:
    """The user's text again, with the error as a comment at the top (as kubectl edit does); an earlier error
    comment is replaced, not stacked."""
    return (
        f"{ERROR_MARK}{message}\n"
        "# Fix it and save to try again; save it unchanged or empty it to give up (your text is then kept in a "
        "file).\n" + without_error(text)
    )


def without_error(text: str) -> str:
    """`text` without the error comment `with_error` put at its top."""
    lines = text.splitlines(keepends=True)
    if lines and lines[0].startswith(ERROR_MARK):
        lines = lines[2:] if len(lines) > 1 and lines[1].startswith("# Fix it") else lines[1:]
    return "".join(lines)


def render_form(review: dict[str, Any]) -> str:
    """The YAML form `review edit` opens: the template's fields, risks with their actions."""
    risks = []
    for risk in review["risks"]:
        actions = [
            {k: a[k] for k in ("description", "owner", "due_date", "success_criteria", "status")}
            for a in review["actions"]
            if a["risk"] == risk["number"]
        ]
        risks.append(
            {k: risk[k] for k in ("description", "evidence", "category", "severity", "impact")} | {"actions": actions}
        )
    form = {
        k: review[k]
        for k in (
            "account_goals",
            "goal_summary",
            "overall_assessment",
            "next_review_date",
            "employee_comments",
            "manager_comments",
        )
    }
    form["risks"] = risks
    header = (
        f"# Review {review['id']} of {review['account']} ({review['state']}).\n"
        "# Edit and save; an empty file or unchanged content cancels. Dates are YYYY-MM-DD.\n"
        f"# severity: {'|'.join(SEVERITIES)}; category: {'|'.join(RISK_CATEGORIES)}; "
        f"action status: {'|'.join(ACTION_STATUSES)}\n"
    )
    return header + yaml.safe_dump(form, sort_keys=False, allow_unicode=True, width=100)
