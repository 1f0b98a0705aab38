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
    """The (subject, body) of a `kind` notification; InputError for an unknown kind or a missing key.

    The text is the template's, byte for byte, but a template is run once per shape of context (`_Skeleton`):
    the many notices of an evaluation differ in values printed as they are, not in their layout."""
    if kind not in KINDS:
        raise InputError(f"unknown notification kind {kind!r} (valid: {', '.join(KINDS)})")
    cleaned = _clean(context)
    skeleton = _skeleton(kind, cleaned)
    text = _run(kind, cleaned) if skeleton is None else skeleton.fill(cleaned)
    return _split(kind, text)


def _run(kind: str, cleaned: dict[str, Any], environment: Environment | None = None) -> str:
    """The template of `kind` run on a cleaned context."""
    from jinja2 import UndefinedError

    template = (environment or _environment()).get_template(f"{kind}.txt.j2")
    try:
        return template.render(cleaned)
    except UndefinedError as exc:
        match = _UNDEFINED.search(str(exc))
        missing = match.group(1) if match else str(exc)
        raise InputError(f"notification {kind!r}: context key {missing!r} is missing") from exc


# --- a template run once per shape of context --------------------------------------------------------------
#
# A name the template only prints (`{{ name }}`, through filters of that value alone: `{{ due_at | when }}`) is
# a slot: the template runs once with a marker in its place, each filter applied to a marker recording itself,
# and the text is cut at the markers. A notice of that shape is then its literal parts joined with its own
# values put through the recorded filters, as the template would have. The shape is which names are defined and
# the values of the names the template decides on (tests, loops, filter arguments): those are run with their
# values. A context the shape cannot hold (an unhashable decided value) is rendered by the template itself.

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use characters around a slot's number in a skeleton run
_SLOT = re.compile("\ue000([0-9]+)\ue001")
_SHAPES = 512  # skeletons kept (an evaluate needs a few per kind; a scheduler pass of reminders a few more)
Filtered = tuple[str, tuple[tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]], ...]]  # name, filters


class _Marker(str):
    """A slot's value during a skeleton run: its text names an entry of `slots` (name and filters so far)."""

    slots: list[Filtered]

    @classmethod
    def make(cls, slots: list[Filtered], entry: Filtered) -> _Marker:
        slots.append(entry)
        marker = cls(f"{_OPEN}{len(slots) - 1}{_CLOSE}")
        marker.slots = slots
        return marker

    def then(self, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> _Marker:
        slot, filters = self.slots[int(self[1:-1])]
        return _Marker.make(self.slots, (slot, (*filters, (name, args, tuple(kwargs.items())))))


class _Skeleton:
    """A template's text for one shape of context: literal parts and slots (`Filtered`), in order; kept as a
    %-format with one `%s` per slot (`%s` prints a value as the template does: str, autoescape off)."""

    def __init__(self, parts: list[str | Filtered]) -> None:
        self.format = "".join(part.replace("%", "%%") if isinstance(part, str) else "%s" for part in parts)
        self.slots = [part for part in parts if not isinstance(part, str)]
        self.seen: dict[tuple[Any, ...], Any] = {}  # filtered values: many notices share a due date, a severity

    def fill(self, cleaned: dict[str, Any]) -> str:
        return self.format % tuple(
            [cleaned[name] if not chain else self.filtered(chain, cleaned[name], cleaned) for name, chain in self.slots]
        )

    def filtered(self, chain: tuple[Any, ...], value: Any, cleaned: dict[str, Any]) -> Any:
        """`value` through the filters of `chain`, remembered by value (and the time zone `when` reads)."""
        try:
            key = (chain, type(value), _decided(value), cleaned.get("timezone"))
            found = self.seen.get(key, _MISSING)
        except TypeError:  # an unhashable value
            return _through(chain, value, cleaned)
        if found is _MISSING:
            found = _through(chain, value, cleaned)
            if len(self.seen) < _SHAPES:
                self.seen[key] = found
        return found


_MISSING = object()


def _through(chain: tuple[tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]], ...], value: Any,
             cleaned: dict[str, Any]) -> Any:  # fmt: skip
    """A value put through the filters a slot recorded, as the template applies them."""
    filters = _environment().filters
    for filter_name, args, kwargs in chain:
        function = filters[filter_name]
        if filter_name in _WITH_CONTEXT:  # reads the context's `timezone`: the cleaned context is it
            value = function(cleaned, value, *args, **dict(kwargs))
        else:
            value = function(value, *args, **dict(kwargs))
    return value


_WITH_CONTEXT = frozenset({"when"})  # context filters whose only read of the context is `context.get(name)`
_skeletons: dict[tuple[Any, ...], _Skeleton] = {}


def _skeleton(kind: str, cleaned: dict[str, Any]) -> _Skeleton | None:
    """The skeleton of `kind` for the shape of `cleaned`, made at its first use; None when there is no shape."""
    names, decided = _names(kind)
    try:
        shape = (
            kind,
            names.intersection(cleaned),
            tuple((name, type(cleaned[name]), _decided(cleaned[name])) for name in decided if name in cleaned)
            if decided
            else (),
        )
        found = _skeletons.get(shape)
    except TypeError:  # an unhashable decided value (a list of digest items)
        return None
    if found is not None:
        return found
    slots: list[Filtered] = []
    marked = {
        name: (value if name in decided else _Marker.make(slots, (name, ()))) if name in names else value
        for name, value in cleaned.items()
    }
    text = _run(kind, marked, _skeleton_environment())
    cut = _SLOT.split(text)  # literal, slot number, literal, ...
    if any(_OPEN in part or _CLOSE in part for part in cut[::2]):
        return None  # a decided value holds a marker character: no skeleton of this shape
    parts: list[str | Filtered] = [part if n % 2 == 0 else slots[int(part)] for n, part in enumerate(cut)]
    found = _Skeleton([part for part in parts if part != ""])
    if len(_skeletons) < _SHAPES:
        _skeletons[shape] = found
    return found


def _decided(value: Any) -> Any:
    """A value as a shape (or a memo) holds it: text and integers as they are, others by their repr (equal
    datetimes in different zones, or 0.0 and -0.0, print differently)."""
    return value if type(value) in (str, int) else repr(value)


@cache
def _names(kind: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the context names `kind`'s template reads, those whose value it decides on rather than only prints)."""
    from jinja2 import nodes

    environment = _environment()
    source, _, _ = environment.loader.get_source(environment, f"{kind}.txt.j2")  # type: ignore[union-attr]
    names: set[str] = set()
    decided: set[str] = set()

    def walk(node: nodes.Node) -> None:  # anywhere but printed: a test, a condition, a loop, an argument
        if isinstance(node, nodes.Output):
            for child in node.nodes:
                printed(child)
        elif isinstance(node, nodes.Test) and node.name == "defined" and isinstance(node.node, nodes.Name):
            names.add(node.node.name)  # defined or not: part of the shape
        elif isinstance(node, nodes.Name):
            names.add(node.name)
            decided.add(node.name)
        else:
            for inner in node.iter_child_nodes():
                walk(inner)

    def printed(node: nodes.Node) -> None:  # an expression an Output prints
        if isinstance(node, nodes.Name):
            names.add(node.name)
        elif isinstance(node, nodes.Filter) and node.node is not None and _slot_filter(node.name):
            printed(node.node)
            for argument in (*node.args, *node.kwargs, node.dyn_args, node.dyn_kwargs):
                if argument is not None:
                    walk(argument)
        elif not isinstance(node, nodes.TemplateData):
            walk(node)

    walk(environment.parse(source))
    return frozenset(names), frozenset(decided)


def _slot_filter(name: str) -> bool:
    """Whether a slot may go through filter `name`: a function of its value and arguments alone (or of the
    context's `timezone` too: `when`)."""
    from jinja2.utils import _PassArg

    function = _environment().filters.get(name)
    return function is not None and (_PassArg.from_obj(function) is None or name in _WITH_CONTEXT)


@lru_cache(maxsize=1)
def _skeleton_environment() -> Environment:
    """The notification environment whose filters, given a slot's marker, record themselves on it."""
    from jinja2 import pass_context

    environment = _environment().overlay()
    environment.filters = dict(environment.filters)
    for name, function in _environment().filters.items():
        if not _slot_filter(name):
            continue
        if name in _WITH_CONTEXT:
            environment.filters[name] = pass_context(_recording(name, function, with_context=True))
        else:
            environment.filters[name] = _recording(name, function, with_context=False)
    return environment


def _recording(name: str, function: Any, with_context: bool) -> Any:
    def record(*args: Any, **kwargs: Any) -> Any:
        value = args[1] if with_context else args[0]
        if isinstance(value, _Marker):
            return value.then(name, args[2:] if with_context else args[1:], kwargs)
        return function(*args, **kwargs)

    return record


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


@lru_cache(maxsize=1)
def _environment() -> Environment:
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
    return env


def _clean(context: dict[str, Any]) -> dict[str, Any]:
    """Drop empty values (so they count as missing) and fold single-line text onto one line."""
    cleaned: dict[str, Any] = {}
    for key, value in context.items():
        if value is None:
            continue
        if isinstance(value, str):
            if key in _MULTILINE_KEYS:
                if not value.strip():
                    continue
                value = value.strip("\n")
            else:
                value = " ".join(value.split())  # empty exactly when the text is blank
                if not value:
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
