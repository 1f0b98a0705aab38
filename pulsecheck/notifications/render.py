"""Render a notification's subject and body from a Jinja2 template per event kind.

Templates live in `notifications/templates/<kind>.txt.j2`; the first line is `Subject: ...`, then a
blank line, then the plain-text body, which ends with the CLI command that opens the item.

Context keys (a value of None or blank text counts as missing):

    account_name    the account's display name
    account_id      the account's external id (quoted for the shell in printed commands)
    review_id       review number                    escalation_id   escalation number
    cycle_id        portfolio review cycle number    period          the cycle's period (2026-Q4)
    rule_id         id of the rule that acted        severity        escalation severity (high, ...)
    priority        priority (P1, ...)               reason          why (rule description, ...)
    level           step of the escalation ladder    due_at          deadline: datetime (UTC), date or text
    comment         a manager's comment (multi-line) actor           the user who acted
    reminder        reminder number (1, 2, ...)      recipient_name  the person greeted ("there" if absent)
    message         a rule's notify text (multi-line; its first line goes into the subject)
    timezone        the business time zone times are shown in (`timezone` setting; UTC if absent)
    base_url        the web app's address: calls to action become links under it (else CLI commands)
    owner_note      why a message went to someone other than the account's owner (owner fallback)

Kinds and the keys each requires [optional keys printed when present]:

    escalation_opened    account_name account_id escalation_id severity reason [priority level rule_id due_at]
    escalation_level_up  account_name account_id escalation_id severity level [priority reason rule_id due_at]
    review_due           account_name review_id due_at reminder [account_id priority]
    review_overdue       account_name review_id due_at reminder state [account_id priority]
    review_submitted     account_name review_id actor [account_id priority due_at]
    review_rejected      account_name review_id actor comment [account_id]
    review_approved      account_name review_id actor [account_id comment]
    review_opened        account_name account_id review_id rule_id [reason priority due_at]
    generic              account_name account_id rule_id message [severity]
    digest               count items (the held messages' subjects) day
    cycle_event          cycle_id period event (submitted, rejected, approved) actor [comment]

A missing required key is an InputError that names it; an unknown kind is an InputError listing the
valid ones. Values are plain text (autoescape off): these are emails and chat messages, not HTML.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from pulsecheck.errors import InputError
from pulsecheck.notifications.message import Message

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).parent / "templates"
KINDS: tuple[str, ...] = (
    "escalation_opened",
    "escalation_level_up",
    "review_due",
    "review_overdue",
    "review_submitted",
    "review_rejected",
    "review_approved",
    "review_opened",
    "generic",
    "digest",
    "cycle_event",
)
# Free text that may span lines; every other text value is folded onto one line so that it cannot
# break the `Subject:` line or the layout of the body.
_MULTILINE_KEYS = frozenset({"comment", "message"})
_UNDEFINED = re.compile(r"'([^']+)' is undefined")


def render(kind: str, context: dict[str, Any]) -> tuple[str, str]:
    """The (subject, body) of a `kind` notification; InputError for an unknown kind or a missing key."""
    if kind not in KINDS:
        raise InputError(f"unknown notification kind {kind!r} (valid: {', '.join(KINDS)})")
    cleaned = _clean(context)
    try:
        text = _filled(kind, cleaned)
    except Exception as exc:
        from jinja2 import UndefinedError  # imported here, not per message (an import statement run is not free)

        if not isinstance(exc, UndefinedError):
            raise
        match = _UNDEFINED.search(str(exc))
        missing = match.group(1) if match else str(exc)
        raise InputError(f"notification {kind!r}: context key {missing!r} is missing") from exc
    return _split(kind, text)


# A template's text is a function of a few of its values (a severity shown upper-case, the `is defined` tests, the
# time zone); the others (names, ids, reasons, due dates) are pasted in as they are, or through a filter of the
# value alone or of the value and what it reads of the context (`when`: the time zone). `_filled` renders the
# template once per combination of the first kind, a marker in place of each of the others, and pastes those in:
# the same text, for a fraction of a render (an evaluate queues thousands; a review's notice, whose due date is
# its own, is pasted into the render its kind and time zone share).
_SLOT = "\x1d"  # the markers' delimiter: a control character no text carries (a value that does is rendered anew)
_PURE_FILTERS = frozenset({"upper", "shell", "oneline", "urlencode"})  # filters of the value alone, no arguments
_CONTEXT_READS = {"when": ("timezone",)}  # what a filter reads from the context besides its value (pasted with it)
FILLED_KEPT = 512  # renders with markers kept, per process


@dataclass(frozen=True)
class _Shape:
    """What of a template's context its text depends on: `slots` (name, filter or None) are pasted in; a name
    outside them is read otherwise (`fills` is False when the template binds names itself: always rendered)."""

    slots: tuple[tuple[str, str | None, str], ...]  # and each one's marker
    pasted: frozenset[str]
    fills: bool
    mentioned: frozenset[str]  # every name the text can depend on: others are no part of a render's key


def _filled(kind: str, context: dict[str, Any]) -> str:
    """The template of `kind` rendered with `context` (cleaned), from a render with markers when it can be. The
    render is kept under the context's names in their order (a caller's contexts come in one order), each with its
    value where the text depends on it."""
    shape = _shape(kind)
    if not shape.fills:
        return _environment().get_template(f"{kind}.txt.j2").render(context)
    pasted = shape.pasted
    key: list[Any] = [kind]
    mentioned = shape.mentioned
    for name, value in context.items():
        if name not in mentioned:  # a value the template never reads (a context made for several kinds)
            continue
        if isinstance(value, str):
            if _SLOT in value:
                return _environment().get_template(f"{kind}.txt.j2").render(context)
        elif not isinstance(value, _KEYED):  # lists, mappings: rendered anew each time
            return _environment().get_template(f"{kind}.txt.j2").render(context)
        if name in pasted:
            key.append(name)
        elif type(value) is datetime:  # what its text shows (wall time and UTC offset), without making the text
            key.append((name, datetime, value, value.utcoffset()))
        else:
            key.append((name, type(value), str(value)))
    made = tuple(key)
    text = _MARKED.get(made)
    if text is None:
        marked = dict(context)
        marked.update((name, _marker(name, None)) for name in pasted if name in context)
        text = _environment(marking=True).get_template(f"{kind}.txt.j2").render(marked)
        if len(_MARKED) >= FILLED_KEPT:
            _MARKED.clear()
        _MARKED[made] = text
    filters = _environment().filters
    for name, applied, marker in shape.slots:
        if name in context:
            if applied is None:
                value = context[name]
            elif applied in _CONTEXT_READS:  # called as Jinja calls it, with the context it reads (`pass_context`)
                value = filters[applied](context, context[name])
            else:
                value = filters[applied](context[name])
            text = text.replace(marker, str(value))
    return text


_MARKED: dict[tuple[Any, ...], str] = {}
_KEYED = (int, float, date)  # values a kept render is keyed by (text aside)


@cache
def _shape(kind: str) -> _Shape:
    """Which names of the template of `kind` are only pasted in: as `{{ name }}`, `{{ name | pure_filter }}` or
    `{{ name | when }}` (what it reads of the context is then keyed), or tested with `is defined`."""
    from jinja2 import nodes

    source = (TEMPLATES_DIR / f"{kind}.txt.j2").read_text(encoding="utf-8")
    tree = _environment().parse(source)
    if any(tree.find_all((nodes.For, nodes.Assign, nodes.AssignBlock, nodes.Macro, nodes.CallBlock, nodes.With))):
        return _Shape((), frozenset(), fills=False, mentioned=frozenset())
    slots: set[tuple[str, str | None]] = set()
    other: set[str] = set()

    def visit(node: Any, parent: Any) -> None:
        if isinstance(node, nodes.Filter):
            other.update(_CONTEXT_READS.get(node.name, ()))
        if isinstance(parent, nodes.Output) and isinstance(node, nodes.Filter) and _pure(node):
            if isinstance(node.node, nodes.Name):
                slots.add((node.node.name, node.name))
                return
        if isinstance(node, nodes.Name):
            if isinstance(parent, nodes.Output):
                slots.add((node.name, None))
            elif not (isinstance(parent, nodes.Test) and parent.name == "defined" and not parent.args):
                other.add(node.name)
            return
        for child in node.iter_child_nodes():
            visit(child, node)

    visit(tree, None)
    pasted = frozenset(name for name, _ in slots if name not in other)
    kept = sorted((slot for slot in slots if slot[0] in pasted), key=str)
    mentioned = frozenset(
        {node.name for node in tree.find_all(nodes.Name)}
        | {read for node in tree.find_all(nodes.Filter) for read in _CONTEXT_READS.get(node.name, ())}
    )
    slots_ = tuple((name, applied, _marker(name, applied)) for name, applied in kept)
    return _Shape(slots_, pasted, fills=True, mentioned=mentioned)


def _marker(name: str, applied: str | None) -> str:
    """What stands for `name` (through the filter `applied`) in a render with markers."""
    return f"{_SLOT}{name}{_SLOT}" if applied is None else f"{_SLOT}{name}|{applied}{_SLOT}"


def _pure(node: Any) -> bool:
    return bool(
        (node.name in _PURE_FILTERS or node.name in _CONTEXT_READS)
        and not node.args
        and not node.kwargs
        and not node.dyn_args
        and not node.dyn_kwargs
    )


# How a template names the person it greets. A template that names them only so is rendered once for all the
# recipients of a notice, a stand-in in place of the name (`render_each`); any other use renders once per person.
GREETING = '{{ recipient_name | default("there") }}'
_STAND_IN = "\x1arecipient\x1a"  # no whitespace (`_clean` keeps it whole); a control character no text carries


def render_each(kind: str, context: dict[str, Any], names: Sequence[str]) -> list[tuple[str, str]]:
    """The (subject, body) that `render(kind, context | {"recipient_name": name})` gives for each of `names`,
    rendering the template once when it uses the name only in the greeting."""
    if len(names) < 2 or not _greets_only(kind) or any(map(_carries_stand_in, context.values())):
        return [render(kind, dict(context, recipient_name=name)) for name in names]
    subject, body = render(kind, dict(context, recipient_name=_STAND_IN))
    shown = [" ".join(name.split()) or "there" for name in names]  # what `_clean` and `default` make of a name
    return [(subject.replace(_STAND_IN, name), body.replace(_STAND_IN, name)) for name in shown]


def _carries_stand_in(value: Any) -> bool:
    if isinstance(value, str):
        return _STAND_IN in value
    return isinstance(value, list | tuple | dict) and _STAND_IN in str(value)


@cache
def _greets_only(kind: str) -> bool:
    """Whether the template of `kind` uses `recipient_name` only as the greeting's `GREETING`."""
    source = (TEMPLATES_DIR / f"{kind}.txt.j2").read_text(encoding="utf-8")
    return source.count("recipient_name") == source.count(GREETING)


def compose(
    kind: str,
    context: dict[str, Any],
    *,
    recipient_name: str,
    dedupe_key: str,
    recipient_email: str | None = None,
    recipient_webhook: str | None = None,
) -> Message:
    """Render `kind` for one recipient and wrap it in a Message (the recipient's name greets them)."""
    full = {"recipient_name": recipient_name, **context}
    subject, body = render(kind, full)
    return Message(
        kind=kind,
        recipient_name=recipient_name,
        recipient_email=recipient_email,
        recipient_webhook=recipient_webhook,
        subject=subject,
        body=body,
        dedupe_key=dedupe_key,
        context=dict(context),
    )


@lru_cache(maxsize=2)
def _environment(marking: bool = False) -> Environment:
    """The templates' environment; `marking`: its pure filters turn a marker into the marker of their output."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, pass_context

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=False,
        undefined=StrictUndefined,
        keep_trailing_newline=True,
        auto_reload=False,  # package data: no stat of the template file on every message
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = pass_context(_when)
    env.filters["shell"] = _shell
    env.filters["oneline"] = _oneline
    if marking:
        for name in _PURE_FILTERS:
            env.filters[name] = _marking(name, env.filters[name])
        for name in _CONTEXT_READS:
            env.filters[name] = pass_context(_marking(name, env.filters[name]))
    return env


def _marking(name: str, applied: Any) -> Any:
    """`applied` (the filter `name`; called with the context first when it reads it), but a marker in gives the
    marker of its output."""

    def marked(*args: Any) -> Any:
        value = args[-1]
        if isinstance(value, str) and value.startswith(_SLOT) and value.endswith(_SLOT) and len(value) > 1:
            return f"{value[:-1]}|{name}{_SLOT}"
        return applied(*args)

    return marked


def _clean(context: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values (so they count as missing) and fold single-line text onto one line."""
    cleaned: dict[str, Any] = {}
    for key, value in context.items():
        if isinstance(value, str):
            if key not in _MULTILINE_KEYS:
                value = " ".join(value.split())  # blank if only whitespace: split() and strip() agree on what that is
                if not value:
                    continue
            elif value.strip():
                value = value.strip("\n")
            else:
                continue
        elif value is None:
            continue
        cleaned[key] = value
    return cleaned


def _split(kind: str, text: str) -> tuple[str, str]:
    head, _, body = text.partition("\n\n")
    if not head.startswith("Subject:"):
        raise InputError(f"notification template {kind!r}: the first line must be 'Subject: ...'")
    subject = " ".join(head.removeprefix("Subject:").split())
    return subject, body.strip("\n") + "\n"


def _when(context: Any, value: Any) -> str:
    """A time for people, to the minute in the business time zone (`2026-03-14 10:00 CET`; naive means UTC),
    ISO for dates."""
    return when(value, str(context.get("timezone") or "UTC"))


def when(value: Any, timezone: str = "UTC") -> str:
    """`value` shown to the minute in `timezone` with the zone's abbreviation; dates as ISO, text as is."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        local = moment.astimezone(UTC if timezone == "UTC" else ZoneInfo(timezone))
        # "%Y-%m-%d %H:%M" without strftime (a third of the cost; every message shows a time or two)
        stamp = f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
        return f"{stamp} {local.tzname() or timezone}"
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _shell(value: Any) -> str:
    """`value` quoted for a POSIX shell, so a printed command can be pasted as is."""
    return shlex.quote(str(value))


def _oneline(value: Any, width: int = 80) -> str:
    """The first non-blank line of `value`, cut to `width` characters."""
    line = next((ln.strip() for ln in str(value).splitlines() if ln.strip()), "")
    return line if len(line) <= width else line[: width - 1] + "…"
