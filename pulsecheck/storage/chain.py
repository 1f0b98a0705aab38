"""The audit chain: one append-only SHA-256 hash chain over every audited change, written in the same
transaction as the change.

Each entry stores the canonical JSON of what it records (an audit event row such as a review or cycle event,
or the audited fields of a record such as a review's state and signatures, an escalation's status, a user's
roles) and `hash = sha256(seq, previous hash, kind, record id, content)`. Changing, deleting, inserting or
reordering an entry breaks the links after it; changing an audited row without a matching entry makes the row
disagree with its latest entry. `pulsecheck.workflow.audit` walks and cross-checks it.

A before-commit hook (`install`) appends entries for the ORM objects a transaction wrote, and for the rows that
bulk Core statements wrote and handed over with `storage.hooks.written`; other code that writes audited rows with
Core statements calls `append` itself.

Sign-offs (a review submitted or approved, a cycle approved, a model approved, rules activated, a deviation
accepted) are signed as git signs commits with SSH keys: the hook hands the entry's statement (`statement`) to
the signer the transaction carries in `session.info[SIGNER]` (set by the application; this layer runs no
ssh-keygen) and stores the signature with the entry; the signing key's fingerprint joins the entry's hash, so a
signature cannot be stripped without breaking the chain.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, insert, inspect, select, text
from sqlalchemy.orm import Session

from pulsecheck.storage import models
from pulsecheck.storage.bulk import connection_of, execute_many
from pulsecheck.storage.entries import (
    AUDITED,
    GENESIS,
    SIGN_OFFS,
    SIGNED_AT,
    Audited,
    encode_content,
    entry_hash,
    head,
    record_fields,
    signed_off,
    statement,
)
from pulsecheck.storage.hooks import held, hold
from pulsecheck.storage.models import AuditEntry, Base
from pulsecheck.storage.tables import AUDIT_CHAIN

if TYPE_CHECKING:
    from pulsecheck.storage.db import Database

LOCK_KEY = 7_270_001  # PostgreSQL advisory lock: one transaction at a time appends
ACTOR = "audit-actor"  # session.info key: who authenticated for the transaction's changes
SIGNER = "signer"  # session.info key: the Signer that signs this transaction's sign-offs


_ORDER = {spec.kind: n for n, spec in enumerate(AUDITED)}  # the chain hook appends kind by kind in this order
_BY_NAME = {spec.model_name: spec for spec in AUDITED}


class _ByModel(dict[type, Audited | None]):
    """The spec of each mapped class (None: not audited), found on the first look-up of the class by its name and
    then checked to be that very class. No class is declared for the asking: an object of a class that
    `storage.models` declares on first use cannot exist before, and a commit hook asks about every object."""

    def __missing__(self, model: type) -> Audited | None:
        spec = _BY_NAME.get(model.__name__)
        found = self[model] = spec if spec is not None and model_of(spec) is model else None
        return found


_BY_MODEL = _ByModel()


def model_of(spec: Audited) -> type[Base]:
    """The mapped class of `spec`'s records, declared now if it was not yet."""
    model: type[Base] = getattr(models, spec.model_name)
    return model


def spec_of(model: type) -> Audited:
    """How rows of the mapped class `model` join the chain (KeyError: they do not)."""
    spec = _BY_MODEL[model]
    if spec is None:
        raise KeyError(model)
    return spec


class Signer(Protocol):
    """Signs the sign-offs of a transaction (the application's: it runs ssh-keygen with the user's key)."""

    def signed_at(self) -> datetime:
        """The time a signature made now states."""

    def sign(self, session: Session, principal: str, data: bytes) -> tuple[str, str] | None:
        """(armored signature, key fingerprint) of `data` by `principal`'s key; None to leave it unsigned (or
        raise RefusedError when signatures are required and `principal` cannot sign)."""


_APPEND = insert(AUDIT_CHAIN)
_LOCK = text("SELECT pg_advisory_xact_lock(:key)")


# The head as two scalar subqueries, for a write statement of a transaction on SQLite to return beside its own
# values (`known_head`): a review transition's UPDATE (`workflow.reviews.rows`) reads it so, not in a SELECT more.
# max(seq) rather than ORDER BY ... LIMIT 1: no bound parameter (the UPDATE goes out as its compiled SQL with the
# row's values alone, `bulk.execute_one`), and the same one probe of the primary key.
_LAST_SEQ = select(func.max(AUDIT_CHAIN.c.seq)).scalar_subquery()
HEAD_COLUMNS = (_LAST_SEQ, select(AUDIT_CHAIN.c.hash).where(AUDIT_CHAIN.c.seq == _LAST_SEQ).scalar_subquery())
_KNOWN_HEAD = "audit-chain:head"  # session.info (`hooks.hold`): (seq, hash) read by a write statement (`known_head`)


def known_head(session: Session, seq: int | None, hash_: str | None) -> None:
    """The head (`HEAD_COLUMNS`, NULL for an empty chain) that a statement which wrote in this transaction read:
    the next `append` of the transaction starts from it instead of reading it again. Only on SQLite, where that
    write holds the database's one write lock until the transaction ends, so no other writer appends meanwhile
    (and a write sees the latest commit: WAL refuses a write from an older snapshot). PostgreSQL reads the head
    after taking the chain's advisory lock, as before."""
    if session.get_bind().dialect.name == "sqlite":
        hold(session, _KNOWN_HEAD, (seq or 0, hash_ or GENESIS))


def _head_now(session: Session) -> tuple[int, str]:
    """The head `append` starts from: the one a write of this very transaction read (`known_head`), used once (an
    append moves it on), else read."""
    known: tuple[int, str] | None = held(session, _KNOWN_HEAD, pop=True)
    return known if known is not None else head(session)


def append(
    session: Session, records: Iterable[tuple[Audited, Any]], actor: str | None = None, signer: Signer | None = None
) -> int:
    """Append one entry per (spec, object or row mapping), in order, after the current head, each naming the
    authenticated `actor` and, for sign-offs, signed by `signer` if given; returns how many.

    On PostgreSQL a transaction-level advisory lock makes concurrent appenders take turns, so the chain stays
    one line; SQLite already lets one writer at a time. Written with a Core insert naming only the columns it
    sets, so migrations can use it before later columns exist."""
    items = list(records)
    if not items:
        return 0
    connection = connection_of(session)
    if connection.dialect.name == "postgresql":
        connection.execute(_LOCK, {"key": LOCK_KEY})
    seq, prev = _head_now(session)
    rows = []
    earlier: dict[tuple[str, int], str] = {}  # this batch's entries, for `_needs_signature`
    for spec, values in items:
        seq += 1
        record = record_fields(spec, values)
        content = encode_content(record)
        record_id = record["id"]
        row = {"seq": seq, "kind": spec.kind, "record_id": record_id, "content": content, "prev_hash": prev}
        # Most entries sign nothing: told from the record itself, not from its content parsed back (the fields
        # `signed_off` reads are text and flags, the same in both).
        if signer is not None and (signed := signed_off(spec.kind, record)) is not None:
            if _needs_signature(session, spec.kind, record_id, content, earlier):
                row |= _signature(session, signer, row, actor, signed)
        earlier[(spec.kind, record_id)] = content
        digest = entry_hash(seq, prev, spec.kind, record_id, content, actor, row.get("signer_key"))
        rows.append(row | {"hash": digest} | ({"actor": actor} if actor else {}))
        prev = digest
    if any("signature" in row for row in rows):  # one executemany: every row names the same columns
        rows = [{"signature": None, "signer_key": None} | row for row in rows]
    execute_many(session, _APPEND, rows)  # marks the session as written (the scheduler's fence)
    return len(rows)


def _needs_signature(
    session: Session, kind: str, record_id: int, content: str, earlier: dict[tuple[str, int], str]
) -> bool:
    """Whether this entry is a sign-off: its content says so and, for a record that changes, the decision's
    fields differ from the record's previous entry (approving once is signed; a later change is not)."""
    fresh = SIGN_OFFS[kind].fresh
    if not fresh:
        return True  # the caller found the content signing off, and any such decision is signed
    values = json.loads(content)
    if signed_off(kind, values) is None:
        return False
    previous = earlier.get((kind, record_id))
    if previous is None:
        query = select(AuditEntry.content).where(AuditEntry.kind == kind, AuditEntry.record_id == record_id)
        previous = session.scalar(query.order_by(AuditEntry.seq.desc()).limit(1))
    if previous is None:
        return True
    before = json.loads(previous)
    return any(before.get(name) != values.get(name) for name in fresh)


def _signature(
    session: Session, signer: Signer, row: dict[str, Any], actor: str | None, signed: tuple[str, str]
) -> dict[str, Any]:
    signed_at = signer.signed_at().isoformat()
    seq, prev, kind, record_id, content = row["seq"], row["prev_hash"], row["kind"], row["record_id"], row["content"]
    data = statement(seq, prev, kind, record_id, content, actor, signed_at, signed)
    made = signer.sign(session, signed[1], data)
    if made is None:
        return {}
    signature, key = made
    return {"signature": f"{SIGNED_AT}{signed_at}\n{signature}", "signer_key": key}


def _changed(obj: Base, spec: Audited) -> bool:
    state = inspect(obj)
    if state.pending or not state.has_identity:
        return True
    return any(state.attrs[name].history.has_changes() for name in spec.fields)


def touched(session: Session) -> list[Any]:
    """The audited objects a flush wrote: every new one, and changed ones whose recorded fields changed."""
    found: list[Any] = []
    for obj in (*session.new, *session.dirty):
        spec = _BY_MODEL[type(obj)]
        if spec is not None and (obj in session.new or _changed(obj, spec)):
            found.append(obj)
    return found


def install(database: Database) -> None:
    """Chain every audited object a transaction of `database` writes, just before it commits."""
    from pulsecheck.storage.hooks import before_commit

    def chain(session: Session, objects: list[Any]) -> None:
        entries = [(spec_of(type(obj)), obj) for obj in objects]
        entries.sort(key=lambda entry: (_ORDER[entry[0].kind], entry[1].id))  # the same order on every replay
        append(session, entries, session.info.get(ACTOR), session.info.get(SIGNER))

    before_commit(database, "audit-chain", touched, chain, accept=lambda obj: _BY_MODEL[type(obj)] is not None)


def backfill(session: Session) -> int:
    """Chain every audited row that exists (kind by kind, in id order): how a database from before the chain
    joins it. Returns the number of entries written."""
    written = 0
    existing = set(inspect(session.get_bind()).get_table_names())
    for spec in AUDITED:
        table = spec.table
        if table.name not in existing:
            continue  # a table a later migration creates: it starts empty
        columns = [table.c[name] for name in ("id", *spec.fields)]  # only these: later columns may not exist yet
        rows = session.execute(select(*columns).order_by(table.c.id)).mappings()
        written += append(session, [(spec, dict(row)) for row in rows])
    return written
