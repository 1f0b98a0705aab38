"""Auditing the audit chain: walk it link by link, then check every audited row against its latest entry."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.storage.chain import AUDITED, BY_KIND, GENESIS, Audited, content_of, entry_hash
from pulsecheck.storage.models import AuditEntry

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
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict[str, Any]:
        """The stable JSON shape of `audit verify --json`."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "records": self.records,
            "first_problem": str(self.problems[0]) if self.problems else None,
            "problems": [{"where": p.where, "what": p.what} for p in self.problems],
        }


def _entries(session: Session) -> Iterator[AuditEntry]:
    last = 0
    while True:
        batch = list(
            session.scalars(select(AuditEntry).where(AuditEntry.seq > last).order_by(AuditEntry.seq).limit(BATCH))
        )
        if not batch:
            return
        yield from batch
        last = batch[-1].seq
        session.expunge_all()


def walk(session: Session, report: ChainReport) -> dict[tuple[str, int], str]:
    """Check each link; returns the latest content per (kind, record) up to the first broken link."""
    latest: dict[tuple[str, int], str] = {}
    expected_seq, prev = 1, GENESIS
    for entry in _entries(session):
        report.entries += 1
        where = f"audit entry {entry.seq}"
        if entry.seq != expected_seq:
            report.problems.append(Problem(where, f"entry {expected_seq} is missing (deleted or renumbered)"))
            return latest
        if entry.prev_hash != prev:
            report.problems.append(Problem(where, "does not follow the entry before it (inserted or reordered)"))
            return latest
        linked = entry_hash(entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor)
        if linked != entry.hash:
            report.problems.append(Problem(where, f"modified: its {entry.kind} {entry.record_id} content changed"))
            return latest
        if entry.kind not in BY_KIND:
            report.problems.append(Problem(where, f"unknown kind {entry.kind!r}"))
            return latest
        if BY_KIND[entry.kind].append_only and (entry.kind, entry.record_id) in latest:
            report.problems.append(Problem(where, f"{entry.kind} {entry.record_id} recorded twice"))
            return latest
        latest[(entry.kind, entry.record_id)] = entry.content
        expected_seq, prev = entry.seq + 1, entry.hash
    return latest


def check_rows(session: Session, spec: Audited, latest: dict[tuple[str, int], str], report: ChainReport) -> None:
    """Every row of `spec`'s table agrees with its latest entry; rows the chain does not know, and entries whose
    row is gone, are problems."""
    table = spec.model.__table__  # type: ignore[attr-defined]
    seen: set[int] = set()
    for row in session.execute(select(table).order_by(table.c.id)).mappings():
        report.records += 1
        record_id = row["id"]
        seen.add(record_id)
        recorded = latest.get((spec.kind, record_id))
        if recorded is None:
            if spec.always:
                problem = Problem(f"{spec.kind} {record_id}", "not in the audit chain (written around it)")
                report.problems.append(problem)
            continue
        if content_of(spec, dict(row)) != recorded:
            report.problems.append(Problem(f"{spec.kind} {record_id}", "differs from its audit chain entry"))
    for kind, record_id in latest:
        if kind == spec.kind and record_id not in seen:
            report.problems.append(Problem(f"{spec.kind} {record_id}", "deleted: the audit chain records it"))


def verify_chain(session: Session) -> ChainReport:
    """Walk the chain and cross-check every audited table; the first problem is the first broken link or row."""
    report = ChainReport()
    latest = walk(session, report)
    if report.ok:
        for spec in AUDITED:
            check_rows(session, spec, latest, report)
    return report
