"""Auditing the audit chain: walk it link by link, check every signature, then check every audited row against
its latest entry; and the same checks for one record (`record_problems`), which `review verify` and `cycle verify`
use. The walk and the signature checks are imported where they run: showing a review checks its own entries only."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pulsecheck.storage.db import engine_of
from pulsecheck.storage.entries import AUDITED
from pulsecheck.workflow.chaincheck import Key, latest_entries, problems_of, records_problems, signature_problems

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.storage.models import Base
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


def verify_chain(session: Session | Connection, workers: int | None = None) -> ChainReport:
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
            gone = RowContent.of(spec, engine_of(session).dialect).entries_without_row(session)
            report.problems += [Problem(f"{spec.kind} {id_}", "deleted: the audit chain records it") for id_ in gone]
    return report


def _first_broken(session: Session | Connection, found: list[Found]) -> tuple[int, Problem] | None:
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


def check_signatures(session: Session | Connection, report: ChainReport) -> None:
    """Verify the signature of every signed entry `walk` met against the key registered at the time."""
    from pulsecheck.workflow.chainwalk import Problem
    from pulsecheck.workflow.signoffs import check_all

    report.signatures = len(report.signed)
    report.problems.extend(Problem(where, what) for where, what in check_all(session, report.signed))


def record_problems(session: Session, record: Base) -> list[str]:
    """Where one audited record and the chain disagree: no entry, a latest entry whose content differs from the
    row, or an entry that is not intact (its hash, or the next entry's link to it)."""
    keys = keys_of([record])
    return records_problems(session, keys, latest_entries(session, keys))


def keys_of(records: list[Base]) -> list[Key]:
    """The chain's keys (kind, id) of audited objects."""
    from pulsecheck.storage.chain import spec_of

    return [(spec_of(type(record)).kind, record.id) for record in records]  # type: ignore[attr-defined]


def chain_problems(session: Session, records: list[Base], signatures: bool = True) -> list[str]:
    """`record_problems` of each record, then (with `signatures`) the signatures of their entries that do not
    verify: what `review verify` and `cycle verify` add to their own checks.

    A database with no chain at all (written without the commit hooks, as library code and tests may) has
    nothing to compare with; `audit verify` names every row of it, and an emptied chain, as unchained."""
    keys = keys_of(records)
    problems = problems_of(session, [keys])[0]
    return problems + signature_problems(session, keys) if signatures else problems
