"""The JSON shapes of a mapped cycle (documented in README): `cycle show`'s (`reading.show_dict`, which the CLI
calls on Core), and `cycle export`'s, which adds the account list, the escalation log, evidence and verification. A
sealed cycle shows its steps and account list from the archive stored at the seal, never from live snapshots."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.states import cycle as machine
from pulsecheck.storage.models import Escalation, ReviewCycle
from pulsecheck.timeutil import iso, start_of_day
from pulsecheck.workflow.cycles.reading import account_names, show_dict
from pulsecheck.workflow.cycles.seal import account_list, verify


def cycle_dict(session: Session, cycle: ReviewCycle, full: bool = False) -> dict[str, Any]:
    """The JSON shape of `cycle show`; `full` adds the account list, the escalation log and evidence (export)."""
    data = show_dict(session, cycle)
    if full:
        escalations = _escalations(session, cycle)
        data["accounts_list"] = cycle.sealed["accounts"] if cycle.sealed else account_list(session, cycle)
        data["escalations"] = _escalation_log(escalations, account_names(session, [e.account_id for e in escalations]))
        data["evidence"] = _evidence(data["steps"])
        data["verification"] = {"problems": verify(session, cycle)}
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


def _escalations(session: Session, cycle: ReviewCycle) -> list[Escalation]:
    """Escalations of accounts in scope that were open during the period or opened since it began."""
    first, _ = machine.parse_period(cycle.period)
    since = start_of_day(first, UTC) - timedelta(days=1)
    scope = set(cycle.account_ids)
    query = select(Escalation).where((Escalation.status != "resolved") | (Escalation.opened_at >= since))
    found = session.scalars(query.order_by(Escalation.priority, Escalation.opened_at))
    return [e for e in found if e.account_id in scope]


def _escalation_log(escalations: list[Escalation], names: Mapping[int, str]) -> list[dict[str, Any]]:
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
