"""Rulesets: activating a validated rules file, and the active one (what `rules show` and evaluation read).

The reads (`active_row`, `active_rules`, `kpi_names`) run on SQLAlchemy Core and take a connection or a session,
so that `rules show` imports no ORM (issue 17); `activate` imports the mapped classes it writes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import RefusedError, ValidationFailed
from pulsecheck.rules.kpis import KpiNames
from pulsecheck.rules.language import RulesFile, load_rules, load_rules_file
from pulsecheck.storage.tables import RULESETS
from pulsecheck.workflow.models import approved_row, model_of
from pulsecheck.yamlfile import Limits

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

    from pulsecheck.storage.models import Ruleset, User


def checked_rules(path: str | Path, kpis: KpiNames | None = None, limits: Limits = Limits()) -> RulesFile:
    """Read and validate a rules file (YAML within `limits`; with `kpis`, its KPI names against the approved
    model), then run every rule through the engine on synthetic accounts (`rules.trial`): what `rules validate`
    and `rules activate` both check. ValidationFailed lists every problem."""
    from pulsecheck.rules.trial import trial

    parsed = load_rules_file(path, kpis=kpis, limits=limits)
    problems = trial(parsed)
    if problems:
        raise ValidationFailed(problems)
    return parsed


def activate(session: Session, path: str | Path, user: User, now: datetime, limits: Limits = Limits()) -> Ruleset:
    """Store a rules file that passes `checked_rules` as the active ruleset (ops, manager or admin)."""
    from pulsecheck.states import permissions
    from pulsecheck.storage.models import Ruleset

    reason = permissions.refusal("rules.activate", permissions.actor(user.name, user.role_set))
    if reason:
        raise RefusedError(reason)
    parsed = checked_rules(path, kpi_names(session), limits)
    current = active_row(session)
    if current is not None and current.sha256 == parsed.sha256:
        raise RefusedError(f"{path} is already the active ruleset (sha256 {parsed.sha256[:12]})")
    if current is not None:  # through the mapped object: the change is flushed and chained like any other
        retired = session.get(Ruleset, current.id)
        assert retired is not None  # just read
        retired.active = False
    row = Ruleset(
        name=Path(path).name,
        sha256=parsed.sha256,
        content=parsed.text,
        activated_by=user.name,
        activated_at=now,
        active=True,
    )
    session.add(row)
    session.flush()
    return row


def active_row(db: Session | Connection) -> Row[Any] | None:
    """The active ruleset row (every column of `rulesets`), if any."""
    return db.execute(select(RULESETS).where(RULESETS.c.active.is_(True))).first()


def active_rules(db: Session | Connection) -> tuple[Row[Any], RulesFile]:
    """The active ruleset, parsed; refused when none is active."""
    row = active_row(db)
    if row is None:
        raise RefusedError("no active ruleset: run `pulsecheck rules activate FILE` first")
    return row, load_rules(row.content, row.name)


def kpi_names(db: Session | Connection) -> KpiNames:
    """The KPIs of the approved scoring model that rules may name (`KpiNames.unknown()` when none is approved)."""
    row = approved_row(db)
    if row is None:
        return KpiNames.unknown()
    model = model_of(row, f"approved model {row.version}")
    # Survey and formula KPIs have no readings of their own: windows over readings cannot see them.
    readings = {k.name for k in model.kpis if k.from_surveys is None and getattr(k, "formula", None) is None}
    return KpiNames(frozenset(k.name for k in model.kpis), frozenset(readings), f"the approved model {row.version}")
