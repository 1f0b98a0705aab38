"""The words of the domain, each defined once: roles, priorities, severities, kinds and states.

A light module (no imports beyond typing): the CLI lists these at start-up and the domain packages use them.
"""

from __future__ import annotations

from typing import Literal, get_args

ROLES = ("reviewer", "manager", "head_of_cs", "ops", "admin")
"""The roles a user can hold."""
MANAGER_ROLES = frozenset({"manager", "admin"})
"""The roles that act as a manager: approve, reject, withdraw, reopen, accept deviations."""
NOTIFY_ROLES = ("owner", "manager", "reviewer", "approver", "ops", "admin", "head_of_cs")
"""Whom a rule or the escalation matrix may notify: a relation to the account or review (owner, manager,
reviewer, approver) or everyone holding a user role."""

Priority = Literal["P1", "P2", "P3", "P4"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
"""Review and escalation priorities, most urgent first."""
Severity = Literal["low", "medium", "high", "critical"]
SEVERITIES: tuple[str, ...] = get_args(Severity)
"""Severities of risks, issues and escalations, mildest first."""
RiskCategory = Literal["customer", "internal"]
RISK_CATEGORIES: tuple[str, ...] = get_args(RiskCategory)

ISSUE_KINDS = ("complaint", "billing", "blocker", "ticket")
SURVEY_KINDS = ("nps", "csat", "ces")

REVIEW_STATES = ("draft", "submitted", "approved", "closed")
CYCLE_STATES = ("draft", "submitted", "approved", "closed")

# The orders each list offers (`--sort`), its default first; the SQL behind each name is in the list's service.
ACCOUNT_SORTS = ("id", "name", "arr", "renewal", "score")
"""accounts: external id, name, ARR (largest first), renewal date (soonest first), score (lowest first)."""
ESCALATION_SORTS = ("priority", "due", "opened", "account")
REVIEW_SORTS = ("newest", "due", "priority", "account")
DEVIATION_SORTS = ("newest", "oldest", "kind", "account")
USER_SORTS = ("name",)
NOTIFICATION_SORTS = ("newest", "oldest", "next-try")
CYCLE_SORTS = ("newest", "oldest", "period")
JOB_SORTS = ("next-run", "id")
KEY_SORTS = ("user", "added")
REVIEW_KINDS = ("manual", "cadence", "rule")
"""How a review was opened: by a person (`review new`), by the cadence schedule, or by a rule's action."""
SCORECARD_STATES = ("submitted", "approved", "rejected")
