"""JSON as text, in two forms: the canonical one that digests, signatures and seals are computed over, and the
readable one people get from `--json` and exports. A light module: the domain packages use it too."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from json.encoder import (  # type: ignore[attr-defined]
    c_encode_basestring,
    c_encode_basestring_ascii,
    c_make_encoder,
)
from typing import Any, NamedTuple


class Form(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """How a canonical text is spelled besides its sorted keys: separators, and whether non-ASCII is escaped."""

    separators: tuple[str, str]
    ascii_only: bool


CANONICAL = Form((",", ":"), ascii_only=False)
"""The canonical form: sorted keys, no spaces, UTF-8 as is. Cycle seals use it; so should any new digest."""

# Digests already stored in the database were computed in these spellings; a different byte would make every
# stored signature or model hash fail to verify, so they stay pinned (tests/unit/test_jsontext.py).
REVIEW_SIGNATURE = Form((", ", ": "), ascii_only=True)
"""Review signature digests (`reviews.employee_digest`, `reviews.manager_digest`): json.dumps' default spacing."""
MODEL_DIGEST = Form((",", ":"), ascii_only=True)
"""Scoring model digests (`scoring_models.sha256`): compact, non-ASCII escaped."""


def plain(value: Any) -> Any:
    """Plain JSON values in a fixed form: dates ISO, datetimes ISO in UTC, mappings sorted, tuples as lists."""
    if isinstance(value, datetime):
        return value.isoformat() if value.tzinfo is None else value.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


def canonical_json(value: Any, form: Form = CANONICAL) -> str:
    """The one text of `value` (through `plain`) that a digest is computed over."""
    return json.dumps(plain(value), sort_keys=True, separators=form.separators, ensure_ascii=form.ascii_only)


def canonical_digest(value: Any, form: Form = CANONICAL) -> str:
    """SHA-256 (hex) of the UTF-8 bytes of `canonical_json(value, form)`."""
    return hashlib.sha256(canonical_json(value, form).encode("utf-8")).hexdigest()


def tree_encoder(form: Form, default: Callable[[Any], Any]) -> Callable[[Any], str]:
    """`json.dumps(value, sort_keys=True, separators=form.separators, ensure_ascii=form.ascii_only,
    default=default)` for a tree of plain values (no circular-reference check: nothing refers to itself), made
    once: json's own C encoder where there is one, without the Python layer `dumps` adds per call (a third of its
    time on a small record), else a JSONEncoder. The same text, byte for byte."""
    item_separator, key_separator = form.separators
    encode_text = c_encode_basestring_ascii if form.ascii_only else c_encode_basestring
    if c_make_encoder is None or encode_text is None:
        encoder = json.JSONEncoder(
            sort_keys=True, separators=form.separators, ensure_ascii=form.ascii_only, default=default
        )
        return encoder.encode
    made = c_make_encoder(None, default, encode_text, None, key_separator, item_separator, True, False, True)
    return lambda value: "".join(made(value, 0))


def _refuse(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps_encoder() -> Callable[[Any], str]:
    """`json.dumps` with its defaults (the text SQLAlchemy stores a JSON column's value as) for plain values that
    refer to nothing twice, json's C encoder made once rather than at every call (each stored notification's
    payload is one such call). The same text, byte for byte."""
    if c_make_encoder is None or c_encode_basestring_ascii is None:
        return json.dumps
    made = c_make_encoder(None, _refuse, c_encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(made(value, 0))


def readable_json(value: Any) -> str:
    """The indented JSON of `--json` output and JSON exports: keys in their given order, UTF-8 as is, anything
    else (a date, a Decimal) as its text."""
    return json.dumps(value, indent=2, ensure_ascii=False, default=str)
