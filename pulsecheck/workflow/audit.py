"""Auditing the audit chain: walk it link by link, check every signature, then check every audited row against
its latest entry; and the same checks for one record (`record_problems`), which `review verify` and `cycle verify`
use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.storage.chain import AUDITED, BY_KIND, BY_MODEL, GENESIS, Audited, content_of, entry_hash, head
from pulsecheck.storage.models import AuditEntry, Base
from pulsecheck.workflow.signoffs import Signed, check_all, signed_entries

BATCH = 10_000


@dataclass(frozen=True)
class Problem:
    """One thing the chain or a row says that it should not: where, and what."""

    where: str  # "audit entry 17" or "review 3"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class ChainReport:
    """What `audit verify` found."""

    entries: int = 0
    records: int = 0
    signatures: int = 0
    problems: list[Problem] = field(default_factory=list)
    signed: list[Signed] = field(default_factory=list)  # the signed entries `walk` met, for `check_signatures`

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `audit verify --json`."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "records": self.records,
            "signatures": self.signatures,
            "first_problem": str(self.problems[0]) if self.problems else None,
            "problems": [{"where": p.where, "what": p.what} for p in self.problems],
        }


ENTRY_COLUMNS = (
    AuditEntry.seq,
    AuditEntry.prev_hash,
    AuditEntry.kind,
    AuditEntry.record_id,
    AuditEntry.content,
    AuditEntry.hash,
    AuditEntry.actor,
    AuditEntry.signer_key,
    AuditEntry.signature,
)


def _entries(session: Session) -> Iterator[Any]:
    """Every entry in order, as plain rows read in batches (no ORM objects: a chain has millions of entries)."""
    last = 0
    while True:
        query = select(*ENTRY_COLUMNS).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(BATCH)
        batch = session.execute(query).all()
        if not batch:
            return
        yield from batch
        last = batch[-1].seq


def walk(session: Session, report: ChainReport) -> dict[tuple[str, int], str]:
    """Check each link; returns the latest content per (kind, record) up to the first broken link."""
    latest: dict[tuple[str, int], str] = {}
    expected_seq, prev = 1, GENESIS
    for entry in _entries(session):
        seq, prev_hash, kind, record_id, content, linked, actor, signer_key, signature = entry
        report.entries += 1
        problem = None
        if seq != expected_seq:
            problem = f"entry {expected_seq} is missing (deleted or renumbered)"
        elif prev_hash != prev:
            problem = "does not follow the entry before it (inserted or reordered)"
        elif entry_hash(seq, prev_hash, kind, record_id, content, actor, signer_key) != linked:
            problem = f"modified: its {kind} {record_id} content changed"
        elif kind not in BY_KIND:
            problem = f"unknown kind {kind!r}"
        elif BY_KIND[kind].append_only and (kind, record_id) in latest:
            problem = f"{kind} {record_id} recorded twice"
        if problem is not None:
            report.problems.append(Problem(f"audit entry {seq}", problem))
            return latest
        latest[(kind, record_id)] = content
        if signer_key is not None or signature is not None:
            report.signed.append(Signed.of(entry))
        expected_seq, prev = seq + 1, linked
    return latest


def check_rows(session: Session, spec: Audited, latest: dict[tuple[str, int], str], report: ChainReport) -> None:
    """Every row of `spec`'s table agrees with its latest entry; rows the chain does not know, and entries whose
    row is gone, are problems."""
    table = spec.model.__table__
    seen: set[int] = set()
    columns = [table.c[name] for name in ("id", *spec.fields)]
    names = ("id", *spec.fields)
    for values in session.execute(select(*columns).order_by(table.c.id)):
        report.records += 1
        row = dict(zip(names, values, strict=True))
        record_id = row["id"]
        seen.add(record_id)
        recorded = latest.get((spec.kind, record_id))
        if recorded is None:
            if spec.always:
                problem = Problem(f"{spec.kind} {record_id}", "not in the audit chain (written around it)")
                report.problems.append(problem)
            continue
        if content_of(spec, row) != recorded:
            report.problems.append(Problem(f"{spec.kind} {record_id}", "differs from its audit chain entry"))
    for kind, record_id in latest:
        if kind == spec.kind and record_id not in seen:
            report.problems.append(Problem(f"{spec.kind} {record_id}", "deleted: the audit chain records it"))


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain and cross-check every audited table; the first problem is the first broken link or row."""
    report = ChainReport()
    latest = walk(session, report)
    if report.ok:
        check_signatures(session, report)
    if report.ok:
        for spec in AUDITED:
            check_rows(session, spec, latest, report)
    return report


def check_signatures(session: Session, report: ChainReport) -> None:
    """Verify the signature of every signed entry `walk` met against the key registered at the time."""
    report.signatures = len(report.signed)
    report.problems.extend(Problem(where, what) for where, what in check_all(session, report.signed))


def record_problems(session: Session, record: Base) -> list[str]:
    """Where one audited record and the chain disagree: no entry, a latest entry whose content differs from the
    row, or an entry that is not intact (its hash, or the next entry's link to it)."""
    spec = BY_MODEL[type(record)]
    where = f"{spec.kind} {record.id}"  # type: ignore[attr-defined]
    query = select(AuditEntry).where(AuditEntry.kind == spec.kind, AuditEntry.record_id == record.id)  # type: ignore[attr-defined]
    entry = session.scalar(query.order_by(AuditEntry.seq.desc()).limit(1))
    if entry is None:
        return [f"{where} is not in the audit chain (written around it)"] if spec.always else []
    problems = []
    linked = entry_hash(
        entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, entry.signer_key
    )
    following = session.scalar(select(AuditEntry.prev_hash).where(AuditEntry.seq == entry.seq + 1))
    if linked != entry.hash or (following is not None and following != entry.hash):
        problems.append(f"{where}: its audit chain entry {entry.seq} was modified")
    table = spec.model.__table__
    row = session.execute(select(table).where(table.c.id == record.id)).mappings().first()  # type: ignore[attr-defined]
    if row is not None and content_of(spec, dict(row)) != entry.content:
        problems.append(f"{where} differs from its audit chain entry {entry.seq}")
    return problems


def chain_problems(session: Session, records: list[Base], signatures: bool = True) -> list[str]:
    """`record_problems` of each record, then (with `signatures`) the signatures of their entries that do not
    verify: what `review verify` and `cycle verify` add to their own checks.

    A database with no chain at all (written without the commit hooks, as library code and tests may) has
    nothing to compare with; `audit verify` names every row of it, and an emptied chain, as unchained."""
    if head(session)[0] == 0:
        return []
    problems = [problem for record in records for problem in record_problems(session, record)]
    if not signatures:
        return problems
    by_kind: dict[str, list[int]] = {}
    for record in records:
        by_kind.setdefault(BY_MODEL[type(record)].kind, []).append(record.id)  # type: ignore[attr-defined]
    for kind, ids in by_kind.items():
        problems += [f"{where}: {what}" for where, what in check_all(session, signed_entries(session, kind, ids))]
    return problems
