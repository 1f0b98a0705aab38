"""The portfolio review cycle: its state machine (a table, named guards, one shared Machine), the SOP's seven
ordered steps, periods, the escalate guard, risk levels, the seal digest and the audit replay. Pure logic."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from pulsecheck.errors import InputError
from pulsecheck.jsontext import canonical_digest
from pulsecheck.states import permissions
from pulsecheck.states.guarded import NEW as NEW
from pulsecheck.states.guarded import GuardedMachine, comment_given
from pulsecheck.vocab import CYCLE_STATES

STATES = list(CYCLE_STATES)
STEPS = ("scope", "data", "model", "trends", "classify", "escalate", "document")
FINDING_KINDS = ("data", "scoring", "process", "other")
DECISIONS = ("escalate", "monitor")

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "start", "source": NEW, "dest": "draft"},
    {"trigger": "submit", "source": "draft", "dest": "submitted"},
    {"trigger": "approve", "source": "submitted", "dest": "approved"},
    {"trigger": "reject", "source": "submitted", "dest": "draft"},
    {"trigger": "close", "source": "approved", "dest": "closed"},
]
EVENTS = [row["trigger"] for row in TRANSITIONS]
# Risk level named after the priority matrix's severities: P1 is what a critical finding gets, and so on.
RISK_LEVELS = {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}


@dataclass(frozen=True)
class Context:
    """Who fires an event on which cycle: what the guards decide on."""

    owner: str
    actor: str
    actor_roles: frozenset[str]
    steps_done: frozenset[str] = frozenset()
    comment: str | None = None
    owner_manager: str | None = None

    def who(self) -> permissions.Actor:
        """The actor as the permission table sees them: roles and relations to this cycle."""
        parties, managers = {"its_owner": self.owner}, {self.owner: self.owner_manager}
        return permissions.actor(self.actor, self.actor_roles, parties, managers)


# --- guards: each returns a reason (refused) or None (allowed) ---------------------------------

Guard = Callable[[Context], str | None]


def permitted(action: str) -> Guard:
    """A guard reading the permission table's row of `action`."""

    def guard(ctx: Context) -> str | None:
        return permissions.refusal(action, ctx.who())

    guard.__name__ = f"permitted_{action.replace('.', '_')}"
    return guard


def may_own(name: str, roles: Collection[str]) -> bool:
    """Whether a user holding `roles` may own (run) a cycle: whoever may start one."""
    return permissions.allowed("cycle.start", permissions.actor(name, roles))


def all_steps_done(ctx: Context) -> str | None:
    missing = open_steps(ctx.steps_done)
    if missing:
        return f"step {missing[0]} is still open ({len(missing)} of {len(STEPS)} steps not done)"
    return None


def four_eyes(ctx: Context) -> str | None:
    if ctx.actor == ctx.owner:
        return f"{ctx.actor} owns the cycle and cannot approve it (four-eyes)"
    return None


GUARDS: dict[str, Sequence[Guard]] = {
    "start": (permitted("cycle.start"),),
    "submit": (permitted("cycle.submit"), all_steps_done),
    "approve": (permitted("cycle.approve"), four_eyes),
    "reject": (permitted("cycle.reject"), comment_given),
    "close": (permitted("cycle.close"),),
}


MACHINE = GuardedMachine("cycle", STATES, TRANSITIONS, GUARDS)


def fire(state: str, event: str, ctx: Context) -> str:
    """Apply `event` to a cycle in `state`; return the new state or raise RefusedError with the reason."""
    return MACHINE.fire(state, event, ctx)


def may_work(state: str, ctx: Context, what: str) -> str | None:
    """Steps, findings and decisions change only a draft, by its owner or a manager."""
    if state != "draft":
        sealed = " and sealed" if state in ("approved", "closed") else ""
        return f"cannot {what}: the cycle is {state}{sealed} (only a draft changes)"
    reason = permissions.refusal("cycle.work", ctx.who())
    return f"cannot {what}: {reason}" if reason else None


# --- the seven ordered steps ---------------------------------------------------------------------


def check_step_name(step: str) -> str:
    """The step, or an input error listing the seven."""
    if step not in STEPS:
        raise InputError(f"unknown step {step!r}: choose from {', '.join(STEPS)}")
    return step


def open_steps(done: Collection[str]) -> list[str]:
    """Steps not done yet, in SOP order."""
    return [s for s in STEPS if s not in done]


def step_refusal(step: str, done: Collection[str]) -> str | None:
    """Why `step` cannot run now (the first earlier step still open), or None."""
    check_step_name(step)
    for earlier in STEPS[: STEPS.index(step)]:
        if earlier not in done:
            return f"cannot complete step {step}: step {earlier} is still open (steps run in order: {', '.join(STEPS)})"
    return None


def cleared_by_redo(step: str, done: Collection[str]) -> list[str]:
    """Done steps after `step`: redoing `step` clears them, since their results build on it."""
    return [s for s in STEPS[STEPS.index(step) + 1 :] if s in done]


def undecided_refusal(at_risk: Sequence[str], decided: Collection[str]) -> str | None:
    """The escalate guard: every at-risk account needs a decision with a named owner."""
    missing = [a for a in at_risk if a not in decided]
    if not missing:
        return None
    shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
    return (
        f"cannot complete step escalate: {len(missing)} at-risk account(s) have no decision with a named owner: "
        f"{shown} (an open escalation with an owner, or `cycle decide ID ACCOUNT monitor --owner U --reason T`)"
    )


def risk_level(priority: str) -> str:
    """The risk level that goes with an escalation priority (P1 critical .. P4 low)."""
    return RISK_LEVELS.get(priority, "medium")


# --- periods --------------------------------------------------------------------------------------

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")


def parse_period(text: str) -> tuple[date, date]:
    """First and last day of a period `YYYY-MM` or `YYYY-Qn`; anything else is an input error."""
    value = text.strip().upper()
    month = _MONTH.match(value)
    quarter = _QUARTER.match(value)
    if month and 1 <= int(month.group(2)) <= 12:
        year, first, last = int(month.group(1)), int(month.group(2)), int(month.group(2))
    elif quarter:
        year, q = int(quarter.group(1)), int(quarter.group(2))
        first, last = 3 * q - 2, 3 * q
    else:
        raise InputError(f"--period {text!r}: not a period (YYYY-MM, e.g. 2026-11, or YYYY-Qn)")
    return date(year, first, 1), date(year, last, calendar.monthrange(year, last)[1])


# --- seal and audit -------------------------------------------------------------------------------


def seal_digest(content: Mapping[str, Any]) -> str:
    """SHA-256 over the canonical JSON of a cycle's content."""
    return canonical_digest(content)


def replay(events: Sequence[tuple[str, str | None, str]]) -> str:
    """The state a cycle reaches through its audit rows (event, from, to); refuses an impossible row."""
    return MACHINE.replay(events)
