"""One rendered notification, ready for a channel: who gets it, what it says, and its dedupe key."""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from pulsecheck.errors import InputError


@dataclass(frozen=True)
class Message:
    """A notification for one recipient; `context` holds the (JSON-able) facts it was rendered from."""

    kind: str
    recipient_name: str
    recipient_email: str | None
    recipient_webhook: str | None
    subject: str
    body: str
    dedupe_key: str
    context: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A plain dict that `json.dumps` accepts (dates and datetimes become ISO 8601 text)."""
        return {
            "kind": self.kind,
            "recipient_name": self.recipient_name,
            "recipient_email": self.recipient_email,
            "recipient_webhook": self.recipient_webhook,
            "subject": self.subject,
            "body": self.body,
            "dedupe_key": self.dedupe_key,
            "context": jsonable(self.context),
        }

    def to_json(self) -> str:
        """The message as one line of JSON."""
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Rebuild a message from `to_dict()` output; raise InputError on missing or unknown keys."""
        names = [f.name for f in fields(cls)]
        unknown = sorted(set(data) - set(names))
        missing = [n for n in names if n not in data and n != "context"]
        if missing:
            raise InputError(f"notification message: missing key(s) {', '.join(missing)}")
        if unknown:
            raise InputError(f"notification message: unknown key(s) {', '.join(unknown)}")
        context = data.get("context") or {}
        if not isinstance(context, dict):
            raise InputError(f"notification message: context must be an object, got {type(context).__name__}")
        return cls(
            kind=str(data["kind"]),
            recipient_name=str(data["recipient_name"]),
            recipient_email=_optional_str(data["recipient_email"]),
            recipient_webhook=_optional_str(data["recipient_webhook"]),
            subject=str(data["subject"]),
            body=str(data["body"]),
            dedupe_key=str(data["dedupe_key"]),
            context=dict(context),
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def jsonable(value: Any) -> Any:
    """A copy of `value` made of JSON types only: dates become ISO text, Decimals floats, the rest str."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Enum):
        return jsonable(value.value)
    return str(value)
