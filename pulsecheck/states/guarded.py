"""A transitions Machine whose rows are checked by named guards that give their reason, shared by every record.

`GuardedMachine(noun, states, table, guards)` builds the `transitions` Machine once, on first use (read-only
commands never import the library), with no model of its own, and reads from it where each event leads from each
state (its `events`: the table's source lists and `=` resolved as the library resolves them). `fire(state, event,
ctx)` applies one event to a record in `state`: the state the Machine's transition leads to once the event's
guards pass, or a RefusedError naming the first guard's reason or the states the event needs. The event's
guards are the only conditions and no transition has callbacks, so looking the move up and running the guards
decides what `Event.trigger` on a light subject decided, without the library's per-call machinery (event data,
condition resolution, state callbacks), which cost more than the rest of a transition's decision.
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
            transitions=[dict(row) for row in self.table],  # no conditions: `fire` runs the guards
            initial=NEW,
            auto_transitions=False,
            send_event=True,
        )

    @cached_property
    def moves(self) -> dict[tuple[str, str], str]:
        """(state, event) -> the state the event leads to, read once from the Machine's events (the first
        transition of a source, as `Event.trigger` tries it first; every transition of an event has the same
        guards, so a later one never passes where the first did not)."""
        moves: dict[tuple[str, str], str] = {}
        for name, event in self.machine.events.items():
            for source, transitions in event.transitions.items():
                if transitions:
                    moves.setdefault((source, name), transitions[0].dest or source)
        return moves

    def fire(self, state: str, event: str, ctx: Any) -> str:
        """Apply `event` in `state`; return the new state or raise RefusedError with the reason."""
        if event not in self.events:
            raise RefusedError(f"unknown event {event!r}")
        dest = self.moves.get((state, event))
        if dest is None:
            allowed = next(row["source"] for row in self.table if row["trigger"] == event)
            sources = ", ".join(allowed) if isinstance(allowed, list) else allowed
            raise RefusedError(f"cannot {event}: the {self.noun} is {state} ({event} needs {sources})")
        for guard in self.guards[event]:
            refusal = guard(ctx)
            if refusal:
                raise RefusedError(f"cannot {event}: {refusal}")
        return dest

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
