"""Auditing the audit chain: walk it link by link, check every signature, then check every audited row against
its latest entry; and the same checks for one record (`record_problems`), which `review verify` and `cycle verify`
use. The walk and the signature checks are imported where they run: showing a review checks its own entries only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row, and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from pulsecheck.storage.chain import AUDITED, content_of, entry_hash, head, spec_of
from pulsecheck.storage.models import AuditEntry, Base

if TYPE_CHECKING:
    from pulsecheck.workflow.chainwalk import Found, Problem
    from pulsecheck.workflow.signoffs import Signed

__all__ = ["ChainReport", "chain_problems", "record_problems", "verify_chain"]



@dataclass
class ChainReport:
    """What `audit verify` found."""

    entries: int = 0
    records: int = 0
    signatures: int = 0
    problems: list[Problem] = field(default_factory=list)
    signed: list[Signed] = field(default_factory=list)  # the signed entries met, for `check_signatures`

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


def verify_chain(session: Session, workers: int | None = None) -> ChainReport:
    """Walk the chain and cross-check every audited table; the first problem is the first broken link or row.

    A large chain is cut into `workers` shares (default: `workers_for`) checked by as many processes at once."""
    from pulsecheck.storage.chainscan import RowContent
    from pulsecheck.workflow.chainwalk import Problem, scan_all, shares, workers_for

    parts = shares(session, workers or workers_for(session))
    found = scan_all(session, parts)
    report = ChainReport()
    broken = _first_broken(session, found)
    if broken is not None:
        seq, problem = broken
        report.entries = sum(part.entries for part in found if part.broken is None or part.broken[0] < seq)
        report.entries += 1 if any(part.broken and part.broken[0] == seq for part in found) else 0
        report.problems.append(problem)
        return report
    report.entries = sum(part.entries for part in found)
    report.signed = [signed for part in found for signed in part.signed]
    check_signatures(session, report)
    if report.ok:
        report.records = sum(part.records for part in found)
        for spec in AUDITED:
            report.problems += [problem for part in found for problem in part.rows.get(spec.kind, [])]
            gone = RowContent.of(spec, session.get_bind().dialect).entries_without_row(session)
            report.problems += [Problem(f"{spec.kind} {id_}", "deleted: the audit chain records it") for id_ in gone]
    return report


def _first_broken(session: Session, found: list[Found]) -> tuple[int, Problem] | None:
    """The first problem in chain order: the first broken link of any share, or an event row recorded twice
    (which only the whole chain shows, so it is asked of the database) if that comes first."""
    from pulsecheck.storage.chainscan import first_repeated
    from pulsecheck.workflow.chainwalk import Problem

    broken = min((part.broken for part in found if part.broken is not None), key=lambda pair: pair[0], default=None)
    twice = first_repeated(session, [spec.kind for spec in AUDITED if spec.append_only])
    if twice is not None and (broken is None or twice[0] < broken[0]):
        seq, kind, record_id = twice
        return seq, Problem(f"audit entry {seq}", f"{kind} {record_id} recorded twice")
    return broken


def check_signatures(session: Session, report: ChainReport) -> None:
    """Verify the signature of every signed entry `walk` met against the key registered at the time."""
    from pulsecheck.workflow.chainwalk import Problem
    from pulsecheck.workflow.signoffs import check_all

    report.signatures = len(report.signed)
    report.problems.extend(Problem(where, what) for where, what in check_all(session, report.signed))


def record_problems(session: Session, record: Base) -> list[str]:
    """Where one audited record and the chain disagree: no entry, a latest entry whose content differs from the
    row, or an entry that is not intact (its hash, or the next entry's link to it)."""
    return _records_problems(session, [record], _latest_entries(session, [record]))


_NEXT = aliased(AuditEntry)
# A chain entry as a record's check reads it, with the link the entry after it holds (its `prev_hash`).
_ENTRY = select(
    AuditEntry.seq, AuditEntry.kind, AuditEntry.record_id, AuditEntry.content, AuditEntry.prev_hash, AuditEntry.hash,
    AuditEntry.actor, AuditEntry.signer_key,
    select(_NEXT.prev_hash).where(_NEXT.seq == AuditEntry.seq + 1).scalar_subquery().label("following"),
)


def _latest_entries(session: Session, records: list[Base]) -> dict[tuple[str, int], Row[Any]]:
    """The latest chain entry of each record that has one (and the next entry's link to it), by (kind, id), in
    one query."""
    by_kind: dict[str, list[int]] = {}
    for record in records:
        by_kind.setdefault(spec_of(type(record)).kind, []).append(record.id)  # type: ignore[attr-defined]
    if not by_kind:
        return {}
    newest = (
        select(func.max(AuditEntry.seq))
        .where(or_(*(and_(AuditEntry.kind == kind, AuditEntry.record_id.in_(ids)) for kind, ids in by_kind.items())))
        .group_by(AuditEntry.kind, AuditEntry.record_id)
    )
    return {(e.kind, e.record_id): e for e in session.execute(_ENTRY.where(AuditEntry.seq.in_(newest)))}


def _records_problems(
    session: Session, records: list[Base], latest: dict[tuple[str, int], Row[Any]]
) -> list[str]:
    """`record_problems` of each record in order, given their latest entries: the records' stored rows read in
    one query per table, not one per record."""
    return _compared(records, latest, _stored_rows(session, records, latest))


def _stored_rows(
    session: Session, records: list[Base], latest: dict[tuple[str, int], Row[Any]]
) -> dict[tuple[str, int], dict[str, Any]]:
    """The stored rows of the records that have a chain entry, by (kind, id), in one query per table."""
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    kinds = {spec_of(type(record)).kind: spec_of(type(record)) for record in records}
    for kind, spec in kinds.items():
        ids = [r.id for r in records if type(r) is spec.model and (kind, r.id) in latest]  # type: ignore[attr-defined]
        if ids:
            table = spec.model.__table__
            for row in session.execute(select(table).where(table.c.id.in_(ids))).mappings():
                rows[(kind, row["id"])] = dict(row)
    return rows


def _compared(
    records: list[Base], latest: dict[tuple[str, int], Row[Any]], rows: dict[tuple[str, int], dict[str, Any]]
) -> list[str]:
    """`record_problems` of each record in order, given their latest entries and stored rows."""
    problems = []
    for record in records:
        spec = spec_of(type(record))
        where = f"{spec.kind} {record.id}"  # type: ignore[attr-defined]
        entry = latest.get((spec.kind, record.id))  # type: ignore[attr-defined]
        if entry is None:
            if spec.always:
                problems.append(f"{where} is not in the audit chain (written around it)")
            continue
        linked = entry_hash(
            entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, entry.signer_key
        )
        if linked != entry.hash or (entry.following is not None and entry.following != entry.hash):
            problems.append(f"{where}: its audit chain entry {entry.seq} was modified")
        stored = rows.get((spec.kind, record.id))  # type: ignore[attr-defined]
        if stored is not None and content_of(spec, stored) != entry.content:
            problems.append(f"{where} differs from its audit chain entry {entry.seq}")
    return problems


def chain_problems_of(session: Session, groups: list[list[Base]]) -> list[list[str]]:
    """`chain_problems(session, group, signatures=False)` of each group of records (a list's reviews, each with
    its events), in the queries of one call for them all."""
    records = [record for group in groups for record in group]
    latest = _latest_entries(session, records)
    if not latest and head(session)[0] == 0:  # as `chain_problems`: no chain at all, nothing to compare with
        return [[] for _ in groups]
    rows = _stored_rows(session, records, latest)
    return [_compared(group, latest, rows) for group in groups]


def chain_problems(session: Session, records: list[Base], signatures: bool = True) -> list[str]:
    """`record_problems` of each record, then (with `signatures`) the signatures of their entries that do not
    verify: what `review verify` and `cycle verify` add to their own checks.

    A database with no chain at all (written without the commit hooks, as library code and tests may) has
    nothing to compare with; `audit verify` names every row of it, and an emptied chain, as unchained."""
    latest = _latest_entries(session, records)
    if not latest and head(session)[0] == 0:  # an entry of these records means the chain is not empty
        return []
    problems = _records_problems(session, records, latest)
    if not signatures:
        return problems
    from pulsecheck.workflow.signoffs import check_all, signed_entries

    by_kind: dict[str, list[int]] = {}
    for record in records:
        by_kind.setdefault(spec_of(type(record)).kind, []).append(record.id)  # type: ignore[attr-defined]
    for kind, ids in by_kind.items():
        problems += [f"{where}: {what}" for where, what in check_all(session, signed_entries(session, kind, ids))]
    return problems
