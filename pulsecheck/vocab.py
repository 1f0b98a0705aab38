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
SCORECARD_STATES = ("submitted", "approved", "rejected")
