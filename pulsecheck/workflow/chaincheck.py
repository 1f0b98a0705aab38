"""Where audited records and their latest audit chain entries disagree, on SQLAlchemy Core: a record is named by
its kind and id (`Key`), its row and entries are read from the tables. What showing and listing reviews check
without the ORM (issue 17); `audit.chain_problems` (review and cycle verify) builds on it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, func, or_, select

from pulsecheck.storage.entries import BY_KIND, content_of, entry_hash, head
from pulsecheck.storage.tables import AUDIT_CHAIN

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

Key = tuple[str, int]  # an audited record: its kind in the chain and its id

_CHAIN = AUDIT_CHAIN.c
_NEXT = AUDIT_CHAIN.alias("following_entry")
# A chain entry as a record's check reads it, with the link the entry after it holds (its `prev_hash`).
_ENTRY = select(
    _CHAIN.seq, _CHAIN.kind, _CHAIN.record_id, _CHAIN.content, _CHAIN.prev_hash, _CHAIN.hash, _CHAIN.actor,
    _CHAIN.signer_key,
    select(_NEXT.c.prev_hash).where(_NEXT.c.seq == _CHAIN.seq + 1).scalar_subquery().label("following"),
)


def latest_entries(db: Session | Connection, keys: list[Key]) -> dict[Key, Any]:
    """The latest chain entry of each record that has one (and the next entry's link to it), by key, in one
    query."""
    by_kind: dict[str, list[int]] = {}
    for kind, record_id in keys:
        by_kind.setdefault(kind, []).append(record_id)
    if not by_kind:
        return {}
    newest = (
        select(func.max(_CHAIN.seq))
        .where(or_(*(and_(_CHAIN.kind == kind, _CHAIN.record_id.in_(ids)) for kind, ids in by_kind.items())))
        .group_by(_CHAIN.kind, _CHAIN.record_id)
    )
    return {(e.kind, e.record_id): e for e in db.execute(_ENTRY.where(_CHAIN.seq.in_(newest)))}


def stored_rows(db: Session | Connection, keys: list[Key], latest: dict[Key, Row[Any]]) -> dict[Key, dict[str, Any]]:
    """The stored rows of the records that have a chain entry, by key, in one query per table."""
    rows: dict[Key, dict[str, Any]] = {}
    by_kind: dict[str, list[int]] = {}
    for key in keys:
        if key in latest:
            by_kind.setdefault(key[0], []).append(key[1])
    for kind, ids in by_kind.items():
        table = BY_KIND[kind].table
        for row in db.execute(select(table).where(table.c.id.in_(ids))).mappings():
            rows[(kind, row["id"])] = dict(row)
    return rows


def compared(keys: list[Key], latest: dict[Key, Row[Any]], rows: dict[Key, dict[str, Any]]) -> list[str]:
    """Where each record and the chain disagree, in order, given their latest entries and stored rows: no entry,
    a latest entry whose content differs from the row, or an entry that is not intact (its hash, or the next
    entry's link to it)."""
    problems = []
    for key in keys:
        spec = BY_KIND[key[0]]
        where = f"{key[0]} {key[1]}"
        entry = latest.get(key)
        if entry is None:
            if spec.always:
                problems.append(f"{where} is not in the audit chain (written around it)")
            continue
        linked = entry_hash(
            entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, entry.signer_key
        )
        if linked != entry.hash or (entry.following is not None and entry.following != entry.hash):
            problems.append(f"{where}: its audit chain entry {entry.seq} was modified")
        stored = rows.get(key)
        if stored is not None and content_of(spec, stored) != entry.content:
            problems.append(f"{where} differs from its audit chain entry {entry.seq}")
    return problems


def records_problems(db: Session | Connection, keys: list[Key], latest: dict[Key, Row[Any]]) -> list[str]:
    """`compared` of the records, given their latest entries: their stored rows read in one query per table."""
    return compared(keys, latest, stored_rows(db, keys, latest))


def problems_of(db: Session | Connection, groups: list[list[Key]]) -> list[list[str]]:
    """Where each group of records (a review with its events) and the chain disagree, in the queries of one call
    for them all. A database with no chain at all (written without the commit hooks, as library code and tests
    may) has nothing to compare with; `audit verify` names every row of it, and an emptied chain, as unchained."""
    keys = [key for group in groups for key in group]
    latest = latest_entries(db, keys)
    if not latest and head(db)[0] == 0:  # an entry of these records means the chain is not empty
        return [[] for _ in groups]
    rows = stored_rows(db, keys, latest)
    return [compared(group, latest, rows) for group in groups]


def signature_problems(db: Session | Connection, keys: list[Key]) -> list[str]:
    """The signatures of the records' entries that do not verify (ssh-keygen, against the keys registered at the
    time): what `review verify` and `cycle verify` add to the checks above."""
    from pulsecheck.workflow.signoffs import check_all, signed_entries

    by_kind: dict[str, list[int]] = {}
    for kind, record_id in keys:
        by_kind.setdefault(kind, []).append(record_id)
    return [
        f"{where}: {what}"
        for kind, ids in by_kind.items()
        for where, what in check_all(db, signed_entries(db, kind, ids))
    ]
