"""The review-cycle part of `pulsecheck demo`: one complete cycle over whatever portfolio the database holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.humanize import word
from pulsecheck.states.cycle import STEPS
from pulsecheck.storage.models import Account, Escalation, User
from pulsecheck.workflow import cycles
from pulsecheck.workflow.cycles.steps import run_step

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database

OWNER, APPROVER = "bob", "maria"  # from the demo's team (samples/users.csv): a reviewer and his manager


def _user(session: Session, name: str) -> User:
    return session.scalars(select(User).where(User.name == name)).one()


def run_demo_cycle(
    database: Database, settings: Settings, now: datetime, echo: Callable[[str], None], outdir: Path
) -> Path:
    """Start a cycle for the current month, run the seven steps (with two findings and one monitor decision),
    have the owner submit it and a manager approve it, and write its archive (md and html) into `outdir`.
    Returns the HTML archive's path."""
    from pulsecheck.demo import MODEL, examples_dir
    from pulsecheck.reports.cycle import cycle_html, cycle_markdown
    from pulsecheck.reports.files import write_atomic

    config = cycles.CycleSettings.from_settings(settings)
    if config.live_model is None:  # the demo's live model is the sample file it approved
        config = dataclasses.replace(config, live_model=str(examples_dir() / MODEL))
    period = now.astimezone(config.tz).strftime("%Y-%m")
    echo("\n== Portfolio review cycle (the SOP, end to end)")
    with database.transaction() as session:
        started = cycles.start(session, period, [], OWNER, _user(session, OWNER), now, config.tz)
        cycle_id = started.id
        echo(f"  cycle {cycle_id} started by {OWNER} for {period}: {len(started.account_ids)} accounts, "
             f"{len(cycles.findings_of(session, cycle_id))} scope finding(s)")
    for step in STEPS:
        if step == "escalate":
            _decide(database, cycle_id, now, echo)
        if step == "document":
            _findings(database, cycle_id, now, echo)
        with database.transaction() as session:
            row = run_step(session, cycle_id, step, _user(session, OWNER), now, config, note=f"{step} reviewed")
            echo(f"  step {step:<8} done: {_summary(step, row.result)}")
    for event, actor, comment in (("submit", OWNER, None), ("approve", APPROVER, "Cycle reviewed; actions agreed.")):
        with database.transaction() as session:
            changed = cycles.transition(session, cycle_id, event, _user(session, actor), now, comment)
            echo(f"  {actor}: {event} -> {changed.state}")
    with database.transaction() as session:
        found = cycles.get_cycle(session, cycle_id)
        problems = cycles.verify(session, found)
        echo(f"  sealed sha256 {found.digest}; verify: {'ok' if not problems else '; '.join(problems)}")
        data = cycles.cycle_dict(session, found, full=True)
    outdir.mkdir(parents=True, exist_ok=True)
    markdown = write_atomic(cycle_markdown(data), outdir / f"cycle-{cycle_id}.md")
    html = write_atomic(cycle_html(data), outdir / f"cycle-{cycle_id}.html")
    echo(f"  archive: {markdown} and {html}")
    return html


def _summary(step: str, result: dict[str, Any]) -> str:
    """A few words on what a step found."""
    parts = {
        "scope": lambda r: f"{r['accounts']} accounts, {r['without_snapshot']['count']} without a snapshot",
        "data": lambda r: f"{r['total_open']} open and {r['total_accepted']} accepted deviation(s)",
        "model": lambda r: "live model matches the approved one" if not r["mismatch"] else "; ".join(r["problems"]),
        "trends": lambda r: f"{len(r['flagged'])} account(s) flagged",
        "classify": lambda r: f"{len(r['at_risk'])} at risk ({word(r['by_priority'])})",
        "escalate": lambda r: f"decisions: {word(r['by_decision'])}",
        "document": lambda r: f"{r['findings']['open']} open finding(s)",
    }
    return parts[step](result)


def _decide(database: Database, cycle_id: int, now: datetime, echo: Callable[[str], None]) -> None:
    """One monitor decision, and an escalation for every other at-risk account nobody has decided on yet."""
    with database.transaction() as session:
        at_risk = cycles.steps_of(session, cycle_id)["classify"].result["at_risk"]
        escalated = set(
            session.scalars(
                select(Account.external_id)
                .join(Escalation, Escalation.account_id == Account.id)
                .where(Escalation.status != "resolved", Escalation.owner.is_not(None))
            )
        )
        owner = _user(session, OWNER)
        for number, item in enumerate(at_risk):
            who = item["owner"] or OWNER
            if number == len(at_risk) - 1:  # the least urgent one
                cycles.decide(session, cycle_id, item["account"], "monitor", who,
                              "Renewal call booked; watch the next two scores before escalating", owner, now)
                echo(f"  decision: monitor {item['account']} (owner {who})")
            elif item["account"] not in escalated:
                cycles.decide(session, cycle_id, item["account"], "escalate", who, "At risk in the cycle", owner, now)
                echo(f"  decision: escalate {item['account']} (owner {who})")


def _findings(database: Database, cycle_id: int, now: datetime, echo: Callable[[str], None]) -> None:
    """Two findings with corrective actions, drawn from what the data step saw."""
    with database.transaction() as session:
        data = cycles.steps_of(session, cycle_id)["data"].result
        first = next(iter(data["deviations"]), None)
        detail = (
            f"{first['account'] or 'portfolio'}: {first['kind']} {first['subject']} ({first['detail']})"
            if first
            else "no deviation open, but the usage feed has no monitoring"
        )
        owner = _user(session, OWNER)
        due = (now + timedelta(days=21)).date()
        for kind, text, action, who in (
            ("data", detail, "Fix the feed at the source and re-import the readings", "olga"),
            ("process", "The cadence and owners of the portfolio cycle are not written down in the SOP",
             "Add the monthly cycle, its owner and its approver to the SOP", OWNER),
        ):
            found = cycles.add_finding(session, cycle_id, kind, text, owner, now, action, who, due)
            echo(f"  finding {found.id} [{kind}] {text} -> {action} ({who}, due {due})")
