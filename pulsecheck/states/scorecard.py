"""An approved scorecard's state machine: submitted, then approved or rejected by someone other than the
submitter (four-eyes), each event checked against the permission table. Pure logic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pulsecheck.states import permissions
from pulsecheck.states.guarded import NEW, GuardedMachine, comment_given
from pulsecheck.vocab import SCORECARD_STATES

TRANSITIONS: list[dict[str, Any]] = [
    {"trigger": "submit", "source": NEW, "dest": "submitted"},
    {"trigger": "approve", "source": "submitted", "dest": "approved"},
    {"trigger": "reject", "source": "submitted", "dest": "rejected"},
]


@dataclass(frozen=True)
class Context:
    """Who fires an event on which scorecard: what the guards decide on."""

    submitter: str
    actor: str
    actor_roles: frozenset[str]
    approver: str | None = None
    submitter_manager: str | None = None
    comment: str | None = None

    def who(self) -> permissions.Actor:
        """The actor as the permission table sees them: the submitter is the record's reviewer."""
        parties = {"its_reviewer": self.submitter, "its_approver": self.approver}
        return permissions.actor(self.actor, self.actor_roles, parties, {self.submitter: self.submitter_manager})


Guard = Callable[[Context], str | None]


def permitted(action: str) -> Guard:
    """A guard reading the permission table's row of `action`."""

    def guard(ctx: Context) -> str | None:
        return permissions.refusal(action, ctx.who())

    guard.__name__ = f"permitted_{action.replace('.', '_')}"
    return guard


def four_eyes(ctx: Context) -> str | None:
    if ctx.actor == ctx.submitter:
        return f"{ctx.actor} submitted the scorecard and cannot decide on it (four-eyes)"
    return None


GUARDS: dict[str, Sequence[Guard]] = {
    "submit": (permitted("scorecard.submit"),),
    "approve": (four_eyes, permitted("scorecard.approve")),
    "reject": (four_eyes, permitted("scorecard.reject"), comment_given),
}

MACHINE = GuardedMachine("scorecard", list(SCORECARD_STATES), TRANSITIONS, GUARDS)


def fire(state: str, event: str, ctx: Context) -> str:
    """Apply `event` to a scorecard in `state`; the new state or a RefusedError with the reason."""
    return MACHINE.fire(state, event, ctx)
