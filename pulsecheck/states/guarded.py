"""A transitions Machine whose rows are checked by named guards that give their reason, shared by every record.

`GuardedMachine(noun, states, table, guards)` builds the `transitions` Machine once, on first use (read-only
commands never import the library), with no model of its own; `fire(state, event, ctx)` applies one event to a
record in `state` by triggering the machine's event on a light subject (`Event.trigger(model)`: no `add_model`,
which would bind every trigger and state method to each subject and unbind them again, per call): the new state,
or a RefusedError naming the first guard's reason or the states the event needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cached_property
from typing import Any

from pulsecheck.errors import RefusedError

NEW = "new"  # before the first event; never stored


# A guard shared by every record; a context has `comment`.
def comment_given(ctx: Any) -> str | None:
    if not (ctx.comment or "").strip():
        return "a comment is required (--comment TEXT)"
    return None


class _Subject:
    """What the shared Machine drives for one call: a state and the context of the event."""

    def __init__(self, state: str, ctx: Any, guards: Mapping[str, Sequence[Callable[[Any], str | None]]]) -> None:
        self.state = state
        self.ctx = ctx
        self.guards = guards
        self.refusal: str | None = None

    def passes_guards(self, event: Any) -> bool:
        for guard in self.guards[event.event.name]:
            self.refusal = guard(self.ctx)
            if self.refusal:
                return False
        return True


class GuardedMachine:
    def __init__(
        self,
        noun: str,
        states: Sequence[str],
        table: Sequence[Mapping[str, Any]],
        guards: Mapping[str, Sequence[Callable[[Any], str | None]]],
    ) -> None:
        self.noun = noun
        self.states = list(states)
        self.table = table
        self.guards = guards
        self.events = [row["trigger"] for row in table]

    @cached_property
    def machine(self) -> Any:
        from transitions import Machine

        return Machine(
            model=None,
            states=[NEW, *self.states],
            transitions=[dict(row, conditions="passes_guards") for row in self.table],
            initial=NEW,
            auto_transitions=False,
            send_event=True,
        )

    def fire(self, state: str, event: str, ctx: Any) -> str:
        """Apply `event` in `state`; return the new state or raise RefusedError with the reason."""
        if event not in self.events:
            raise RefusedError(f"unknown event {event!r}")
        from transitions import MachineError

        subject = _Subject(state, ctx, self.guards)
        try:
            if not self.machine.events[event].trigger(subject):
                raise RefusedError(f"cannot {event}: {subject.refusal}")
        except MachineError:
            allowed = next(row["source"] for row in self.table if row["trigger"] == event)
            sources = ", ".join(allowed) if isinstance(allowed, list) else allowed
            raise RefusedError(f"cannot {event}: the {self.noun} is {state} ({event} needs {sources})") from None
        return str(subject.state)

    def replay(self, events: Sequence[tuple[str, str | None, str]]) -> str:
        """The state a record reaches through its audit rows (event, from, to); refuses an impossible row."""
        state = NEW
        for event, from_state, to_state in events:
            if (from_state or NEW) != state:
                raise RefusedError(f"audit trail broken: {event} from {from_state} but the {self.noun} was {state}")
            row = next((r for r in self.table if r["trigger"] == event), None)
            if row is None:
                raise RefusedError(f"audit trail broken: unknown event {event!r}")
            sources = row["source"] if isinstance(row["source"], list) else [row["source"]]
            dest = state if row["dest"] == "=" else row["dest"]
            if state not in sources or dest != to_state:
                raise RefusedError(f"audit trail broken: {event} cannot go {state} -> {to_state}")
            state = to_state
        return state

    def allowed_events(self, state: str) -> list[str]:
        """Events whose source includes `state` (guards not checked)."""
        return [e for e in self.events if e in self.machine.get_triggers(state)]
