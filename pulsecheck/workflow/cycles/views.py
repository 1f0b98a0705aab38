"""The JSON shapes of a cycle (documented in README): `cycle show`'s (`reading.show_dict`, which the CLI
calls on Core), and `cycle export`'s, which adds the account list, the escalation log, evidence and verification. A
sealed cycle shows its steps and account list from the archive stored at the seal, never from live snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.states import cycle as machine
from pulsecheck.storage.more_tables import ESCALATIONS
from pulsecheck.timeutil import iso, start_of_day
from pulsecheck.workflow.cycles.reading import account_names, show_dict
from pulsecheck.workflow.cycles.seal import account_list, verify

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session


def cycle_dict(db: Session | Connection, cycle: Any, full: bool = False) -> dict[str, Any]:
    """The JSON shape of `cycle show`; `full` adds the account list, the escalation log and evidence (export). On
    SQLAlchemy Core: a connection or a session, a cycle's row or its mapped object."""
    data = show_dict(db, cycle)
    if full:
        escalations = _escalations(db, cycle)
        data["accounts_list"] = cycle.sealed["accounts"] if cycle.sealed else account_list(db, cycle)
        data["escalations"] = _escalation_log(escalations, account_names(db, [e.account_id for e in escalations]))
        data["evidence"] = _evidence(data["steps"])
        data["verification"] = {"problems": verify(db, cycle)}
        data["verification"]["ok"] = not data["verification"]["problems"]
    return data


def _evidence(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every step's evidence: links as given, files by name and the sha256 of the bytes stored (and sealed)."""
    links = [{"step": s["step"], "link": link, "file": None, "sha256": None} for s in steps for link in s["evidence"]]
    files = [
        {"step": s["step"], "link": None, "file": a["filename"], "sha256": a["sha256"]}
        for s in steps
        for a in s["attachments"]
    ]
    order = {name: n for n, name in enumerate(machine.STEPS)}
    return sorted(links + files, key=lambda e: order[e["step"]])


def _escalations(db: Session | Connection, cycle: Any) -> list[Row[Any]]:
    """Escalations of accounts in scope that were open during the period or opened since it began."""
    first, _ = machine.parse_period(cycle.period)
    since = start_of_day(first, UTC) - timedelta(days=1)
    scope = set(cycle.account_ids)
    escalation = ESCALATIONS.c
    query = select(ESCALATIONS).where((escalation.status != "resolved") | (escalation.opened_at >= since))
    found = db.execute(query.order_by(escalation.priority, escalation.opened_at))
    return [e for e in found if e.account_id in scope]


def _escalation_log(escalations: list[Row[Any]], names: Mapping[int, str]) -> list[dict[str, Any]]:
    """The escalation log of the export, each naming its account."""
    return [
        {
            "id": e.id,
            "account": names.get(e.account_id),
            "rule": e.rule_id,
            "severity": e.severity,
            "priority": e.priority,
            "owner": e.owner,
            "status": e.status,
            "reason": e.reason,
            "opened_at": e.opened_at.isoformat(),
            "resolved_at": iso(e.resolved_at),
        }
        for e in escalations
    ]
