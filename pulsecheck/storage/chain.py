"""The audit chain: one append-only SHA-256 hash chain over every audited change, written in the same
transaction as the change.

Each entry stores the canonical JSON of what it records (an audit event row such as a review or cycle event,
or the audited fields of a record such as a review's state and signatures, an escalation's status, a user's
roles) and `hash = sha256(seq, previous hash, kind, record id, content)`. Changing, deleting, inserting or
reordering an entry breaks the links after it; changing an audited row without a matching entry makes the row
disagree with its latest entry. `pulsecheck.workflow.audit` walks and cross-checks it.

A before-commit hook (`install`) appends entries for the ORM objects a transaction wrote; code that writes
audited rows with Core statements calls `append` itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, insert, inspect, select, text
from sqlalchemy.orm import Session

from pulsecheck.jsontext import canonical_json
from pulsecheck.storage.models import (
    AuditEntry,
    Base,
    CycleDecision,
    CycleEvent,
    Deviation,
    Escalation,
    EvaluationRun,
    Review,
    ReviewCycle,
    ReviewEvent,
    Ruleset,
    ScoringModelVersion,
    User,
)

if TYPE_CHECKING:
    from pulsecheck.storage.db import Database

GENESIS = "0" * 64
LOCK_KEY = 7_270_001  # PostgreSQL advisory lock: one transaction at a time appends
ACTOR = "audit-actor"  # session.info key: who authenticated for the transaction's changes


@dataclass(frozen=True)
class Audited:
    """How one model joins the chain: its kind, the fields recorded, and whether every row must be in it."""

    kind: str
    model: type[Base]
    fields: tuple[str, ...]
    append_only: bool = False  # an event row: written once, never changed
    always: bool = True  # every row has an entry (False: rows created in bulk join at their first decision)


AUDITED: tuple[Audited, ...] = (
    Audited(
        "review_event",
        ReviewEvent,
        ("review_id", "event", "from_state", "to_state", "actor", "comment", "at", "cause"),
        append_only=True,
    ),
    Audited(
        "review",
        Review,
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
    Audited("cycle_event", CycleEvent, ("cycle_id", "event", "from_state", "to_state", "actor", "comment", "at"), True),
    Audited(
        "cycle",
        ReviewCycle,
        ("period", "segments", "owner", "approver", "state", "as_of", "model_id", "ruleset_id", "account_ids")
        + ("digest",),
    ),
    Audited("cycle_decision", CycleDecision, ("cycle_id", "account_id", "decision", "owner", "reason", "decided_at")),
    Audited(
        "escalation",
        Escalation,
        ("account_id", "review_id", "rule_id", "severity", "priority", "owner", "level", "status", "acknowledged_by"),
    ),
    Audited(
        "deviation", Deviation, ("account_id", "kind", "subject", "status", "accepted_by", "reason", "accepted_until"),
        always=False,
    ),
    Audited("model", ScoringModelVersion, ("version", "sha256", "status", "approved_by", "approved_at")),
    Audited("ruleset", Ruleset, ("name", "sha256", "activated_by", "activated_at", "active")),
    Audited("user", User, ("name", "roles", "email", "webhook", "manager_name")),
    Audited(
        "evaluation_run",
        EvaluationRun,
        ("started_at", "finished_at", "as_of", "ruleset_id", "accounts", "firings", "actions", "status", "error"),
    ),
)
BY_MODEL = {spec.model: spec for spec in AUDITED}
BY_KIND = {spec.kind: spec for spec in AUDITED}


def content_of(spec: Audited, values: Any) -> str:
    """The canonical content of a record: its id and recorded fields, read from an object or a row mapping."""
    get = values.get if isinstance(values, dict) else lambda name: getattr(values, name)
    return canonical_json({"id": get("id"), **{name: get(name) for name in spec.fields}})


def entry_hash(seq: int, prev_hash: str, kind: str, record_id: int, content: str, actor: str | None = None) -> str:
    """The hash that links entry `seq` to the one before it (and binds who authenticated for it)."""
    text_ = f"{seq}\n{prev_hash}\n{kind}\n{record_id}\n{content}" + (f"\n{actor}" if actor else "")
    return hashlib.sha256(text_.encode("utf-8")).hexdigest()


def head(session: Session) -> tuple[int, str]:
    """The last entry's sequence number and hash (0 and the genesis hash for an empty chain)."""
    row = session.execute(select(AuditEntry.seq, AuditEntry.hash).order_by(AuditEntry.seq.desc()).limit(1)).first()
    return (row[0], row[1]) if row else (0, GENESIS)


def append(session: Session, records: Iterable[tuple[Audited, Any]], actor: str | None = None) -> int:
    """Append one entry per (spec, object or row mapping), in order, after the current head, each naming the
    authenticated `actor`; returns how many.

    On PostgreSQL a transaction-level advisory lock makes concurrent appenders take turns, so the chain stays
    one line; SQLite already lets one writer at a time. Written with a Core insert naming only the columns it
    sets, so migrations can use it before later columns exist."""
    items = list(records)
    if not items:
        return 0
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
    seq, prev = head(session)
    rows = []
    for spec, values in items:
        seq += 1
        content = content_of(spec, values)
        record_id = values["id"] if isinstance(values, dict) else values.id
        digest = entry_hash(seq, prev, spec.kind, record_id, content, actor)
        row = {"seq": seq, "kind": spec.kind, "record_id": record_id, "content": content, "prev_hash": prev}
        rows.append(row | {"hash": digest} | ({"actor": actor} if actor else {}))
        prev = digest
    session.execute(insert(cast(Table, AuditEntry.__table__)), rows)
    return len(rows)


def _changed(obj: Base, spec: Audited) -> bool:
    state = inspect(obj)
    if state.pending or not state.has_identity:
        return True
    return any(state.attrs[name].history.has_changes() for name in spec.fields)


def touched(session: Session) -> list[Any]:
    """The audited objects a flush wrote: every new one, and changed ones whose recorded fields changed."""
    found: list[Any] = []
    for obj in (*session.new, *session.dirty):
        spec = BY_MODEL.get(type(obj))
        if spec is not None and (obj in session.new or _changed(obj, spec)):
            found.append(obj)
    return found


def install(database: Database) -> None:
    """Chain every audited object a transaction of `database` writes, just before it commits."""
    from pulsecheck.storage.hooks import before_commit

    def chain(session: Session, objects: list[Any]) -> None:
        order = {spec.model: n for n, spec in enumerate(AUDITED)}
        ordered = sorted(objects, key=lambda obj: (order[type(obj)], obj.id))  # the same order on every replay
        append(session, [(BY_MODEL[type(obj)], obj) for obj in ordered], session.info.get(ACTOR))

    before_commit(database, "audit-chain", touched, chain)


def backfill(session: Session) -> int:
    """Chain every audited row that exists (kind by kind, in id order): how a database from before the chain
    joins it. Returns the number of entries written."""
    written = 0
    for spec in AUDITED:
        table = spec.model.__table__  # type: ignore[attr-defined]
        columns = [table.c[name] for name in ("id", *spec.fields)]  # only these: later columns may not exist yet
        rows = session.execute(select(*columns).order_by(table.c.id)).mappings()
        written += append(session, [(spec, dict(row)) for row in rows])
    return written
