"""The audit chain's entries as data: which records join it and with which fields (`AUDITED`), an entry's
canonical content, its hash, the text a sign-off's signature covers, and the chain's head. SQLAlchemy Core only:
checking a review's entries (`review show`, `review list`) reads them without the ORM (issue 17); writing entries
(`chain`) builds on this."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, NamedTuple

from sqlalchemy import Table, select

from pulsecheck.jsontext import CANONICAL, tree_encoder
from pulsecheck.storage.tables import AUDIT_CHAIN, metadata
from pulsecheck.timeutil import iso

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

GENESIS = "0" * 64


class Audited(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """How one model joins the chain: its kind, the fields recorded, and whether every row must be in it."""

    kind: str
    model_name: str  # the mapped class's name in `storage.models` (most are declared on first use)
    table_name: str
    fields: tuple[str, ...]
    append_only: bool = False  # an event row: written once, never changed
    always: bool = True  # every row has an entry (False: rows created in bulk join at their first decision)

    @property
    def table(self) -> Table:
        """The table of the records (`more_tables` loaded now if it holds it and was not yet)."""
        found = metadata.tables.get(self.table_name)
        if found is None:
            import pulsecheck.storage.more_tables  # noqa: F401 - its tables join the metadata

            found = metadata.tables[self.table_name]
        return found


AUDITED: tuple[Audited, ...] = (
    Audited(
        "review_event",
        "ReviewEvent",
        "review_events",
        ("review_id", "event", "from_state", "to_state", "actor", "comment", "at", "cause"),
        append_only=True,
    ),
    Audited(
        "review",
        "Review",
        "reviews",
        (
            "account_id",
            "state",
            "kind",
            "reviewer",
            "approver",
            "baseline_score",
            "baseline_bucket",
            "employee_signed_at",
            "employee_signed_by",
            "employee_digest",
            "manager_signed_at",
            "manager_signed_by",
            "manager_digest",
        ),
    ),
    Audited(
        "cycle_event",
        "CycleEvent",
        "cycle_events",
        ("cycle_id", "event", "from_state", "to_state", "actor", "comment", "at"),
        True,
    ),
    Audited(
        "cycle",
        "ReviewCycle",
        "review_cycles",
        ("period", "segments", "owner", "approver", "state", "as_of", "model_id", "ruleset_id", "account_ids")
        + ("digest",),
    ),
    Audited(
        "cycle_decision",
        "CycleDecision",
        "cycle_decisions",
        ("cycle_id", "account_id", "decision", "owner", "reason", "decided_at"),
    ),
    Audited(
        "escalation",
        "Escalation",
        "escalations",
        ("account_id", "review_id", "rule_id", "severity", "priority", "owner", "level", "status", "acknowledged_by"),
    ),
    Audited(
        "escalation_event",
        "EscalationEvent",
        "escalation_events",
        ("escalation_id", "event", "actor", "reason", "at"),
        True,
    ),
    Audited(
        "deviation",
        "Deviation",
        "deviations",
        ("account_id", "kind", "subject", "status", "accepted_by", "reason", "accepted_until"),
        always=False,
    ),
    Audited(
        "scorecard",
        "Scorecard",
        "scorecards",
        ("account_id", "as_of", "digest", "state", "submitted_by", "approver", "approved_by", "decided_at")
        + ("decision_comment",),
    ),
    Audited(
        "model", "ScoringModelVersion", "scoring_models", ("version", "sha256", "status", "approved_by", "approved_at")
    ),
    Audited("ruleset", "Ruleset", "rulesets", ("name", "sha256", "activated_by", "activated_at", "active")),
    Audited("user", "User", "users", ("name", "roles", "email", "webhook", "manager_name")),
    Audited(
        "key",
        "UserKey",
        "user_keys",
        ("user_id", "fingerprint", "public_key", "added_by", "added_at", "revoked_by", "revoked_at"),
    ),
    Audited(
        "api_token",
        "ApiToken",
        "api_tokens",
        ("user_id", "name", "scope", "token_hash", "created_by", "created_at", "expires_at")
        + ("revoked_by", "revoked_at"),
    ),
    Audited("server_key", "ServerKey", "server_keys", ("fingerprint", "public_key", "added_at", "revoked_at")),
    Audited(
        "evaluation_run",
        "EvaluationRun",
        "evaluation_runs",
        ("started_at", "finished_at", "as_of", "ruleset_id", "accounts", "firings", "actions", "status", "error"),
    ),
)
BY_KIND = {spec.kind: spec for spec in AUDITED}


class SignOff(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """What a kind of entry signs off, when it does: the event's name, the content field naming who signs, the
    condition on the content, and the fields that must differ from the record's previous entry (a new decision,
    not a later change of the same record)."""

    kind: str
    event: Callable[[dict[str, Any]], str | None]
    principal: str
    fresh: tuple[str, ...] = ()


SIGN_OFFS = {
    rule.kind: rule
    for rule in (
        SignOff("review_event", lambda c: c["event"] if c["event"] in ("submit", "approve") else None, "actor"),
        SignOff("cycle_event", lambda c: "approve" if c["event"] == "approve" else None, "actor"),
        SignOff("model", lambda c: "approve" if c["status"] == "approved" else None, "approved_by", ("status",)),
        SignOff("ruleset", lambda c: "activate" if c["active"] else None, "activated_by", ("activated_at",)),
        SignOff(
            "deviation",
            lambda c: "accept" if c["status"] == "accepted" else None,
            "accepted_by",
            ("status", "accepted_by", "reason", "accepted_until"),
        ),
    )
}


def signed_off(kind: str, content: dict[str, Any]) -> tuple[str, str] | None:
    """(event, principal) when an entry of `kind` with `content` records a sign-off, else None."""
    rule = SIGN_OFFS.get(kind)
    event = rule.event(content) if rule else None
    if rule is None or event is None or not content.get(rule.principal):
        return None
    return event, str(content[rule.principal])


def statement(
    seq: int,
    prev_hash: str,
    kind: str,
    record_id: int,
    content: str,
    actor: str | None,
    signed_at: str,
    signed: tuple[str, str] | None = None,
) -> bytes:
    """The text a sign-off's signature covers: which record, what event, by whom, when, the SHA-256 of the
    entry's content and its place in the chain. Rebuilt from the entry alone, so anyone can check it (`signed`:
    the content's `signed_off`, when the caller has it)."""
    event, principal = signed or signed_off(kind, json.loads(content)) or ("-", "-")
    lines = [
        "pulsecheck sign-off v1",
        f"record: {kind} {record_id}",
        f"event: {event}",
        f"signer: {principal}",
        f"actor: {actor or '-'}",
        f"time: {signed_at}",
        f"content-sha256: {hashlib.sha256(content.encode('utf-8')).hexdigest()}",
        f"seq: {seq}",
        f"prev-hash: {prev_hash}",
    ]
    return ("\n".join(lines) + "\n").encode("utf-8")


SIGNED_AT = "signed-at "  # the first line of a stored signature; the SSH signature armor follows


def split_signature(stored: str) -> tuple[str, str]:
    """(signing time, SSH signature armor) of a stored signature; ValueError when it is not one."""
    first, _, armor = stored.partition("\n")
    if not first.startswith(SIGNED_AT) or "BEGIN SSH SIGNATURE" not in armor:
        raise ValueError("not a pulsecheck signature")
    return first.removeprefix(SIGNED_AT), armor


def content_of(spec: Audited, values: Any) -> str:
    """The canonical content of a record: its id and recorded fields, read from an object or a row mapping."""
    # The fields are scalars, dates and JSON lists: json's own sorting gives canonical_json's text, byte for
    # byte, without its recursive pre-pass (verify computes this for every audited row).
    return encode_content(record_fields(spec, values))


def record_fields(spec: Audited, values: Any) -> dict[str, Any]:
    """The id and recorded fields of an object or a row mapping. A transient object (`storage.bulk.transient`:
    a row a Core statement wrote) is read from its dict, without the attribute machinery: an unset column reads
    None there as through the attribute."""
    if isinstance(values, dict):
        get = values.get
    else:
        state = getattr(values, "_sa_instance_state", None)
        if state is not None and state.key is None and state.session_id is None:
            get = values.__dict__.get
        else:
            return {"id": values.id, **{name: getattr(values, name) for name in spec.fields}}
    return {"id": get("id"), **{name: get(name) for name in spec.fields}}


def _moment(value: Any) -> Any:
    if isinstance(value, date | datetime):
        return iso(value)
    raise TypeError(f"cannot put {type(value).__name__} into the audit chain")


_CONTENT = tree_encoder(CANONICAL, _moment)  # records are flat: scalars, dates and JSON lists


def encode_content(record: dict[str, Any]) -> str:
    """The canonical JSON text of a record's content (keys sorted, compact, UTF-8 kept, dates in ISO form)."""
    return _CONTENT(record)


def entry_hash(
    seq: int,
    prev_hash: str,
    kind: str,
    record_id: int,
    content: str,
    actor: str | None = None,
    signer_key: str | None = None,
) -> str:
    """The hash that links entry `seq` to the one before it (and binds who authenticated for it, and the key
    that signed it)."""
    text_ = f"{seq}\n{prev_hash}\n{kind}\n{record_id}\n{content}" + (f"\n{actor}" if actor else "")
    if signer_key:
        text_ += f"\nsigned by {signer_key}"
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


# Built once: every commit that writes an audited row reads the head and appends (the statements' compiled forms
# are cached by the engine either way; building them anew each time cost more than running them).
_HEAD = select(AUDIT_CHAIN.c.seq, AUDIT_CHAIN.c.hash).order_by(AUDIT_CHAIN.c.seq.desc()).limit(1)


def head(db: Session | Connection) -> tuple[int, str]:
    """The last entry's sequence number and hash (0 and the genesis hash for an empty chain)."""
    row = db.execute(_HEAD).first()
    return (row[0], row[1]) if row else (0, GENESIS)
