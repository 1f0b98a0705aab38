"""Approved scorecards: `submit` stores the account's scorecard as it is now (content and digest) for approval,
`approve`/`reject` decide on it four-eyes; every change goes through the scorecard machine and joins the audit
chain (the `scorecards` table is audited)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import NotFoundError
from pulsecheck.jsontext import canonical_digest
from pulsecheck.states import scorecard as machine
from pulsecheck.states.guarded import NEW
from pulsecheck.storage.models import Account, Scorecard, User
from pulsecheck.storage.more_tables import SCORECARDS
from pulsecheck.workflow import attachments
from pulsecheck.workflow.scorecards import scorecard
from pulsecheck.workflow.users import get_user

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

KIND = "scorecard"  # attachment_links.record_kind
_CARD = SCORECARDS.c


def submit(
    session: Session,
    account: str,
    actor: User,
    now: datetime,
    as_of: datetime | None = None,
    approver: str | None = None,
    comment: str | None = None,
    upload: attachments.Upload | None = None,
) -> Scorecard:
    """Store the account's scorecard for approval by `approver` (default: the submitter's manager)."""
    content = scorecard(session, account, as_of)
    asked = get_user(session, approver).name if approver else actor.manager_name
    ctx = machine.Context(actor.name, actor.name, frozenset(actor.role_set), asked, actor.manager_name)
    state = machine.fire(NEW, "submit", ctx)
    found = session.scalar(select(Account).where(Account.external_id == content["account"]["id"]))
    assert found is not None  # scorecard() found it
    row = Scorecard(
        account_id=found.id,
        as_of=datetime.fromisoformat(content["as_of"]),
        content=content,
        digest=canonical_digest(content),
        state=state,
        submitted_by=actor.name,
        submitted_at=now,
        approver=asked,
        comment=(comment or "").strip() or None,
    )
    session.add(row)
    session.flush()
    if upload is not None:
        attachments.attach(session, KIND, row.id, upload, actor.name, now)
    return row


def decide(
    session: Session, scorecard_id: int, event: str, actor: User, now: datetime, comment: str | None
) -> Scorecard:
    """Approve or reject a submitted scorecard as `actor` (never its submitter)."""
    row = session.get(Scorecard, scorecard_id)
    if row is None:
        raise NotFoundError(f"unknown scorecard {scorecard_id}")
    manager = session.scalar(select(User.manager_name).where(User.name == row.submitted_by))
    ctx = machine.Context(row.submitted_by, actor.name, frozenset(actor.role_set), row.approver, manager, comment)
    row.state = machine.fire(row.state, event, ctx)
    row.approved_by, row.decided_at = actor.name, now
    row.decision_comment = (comment or "").strip() or None
    session.flush()
    return row


def records_of(db: Session | Connection, account_id: int) -> list[Row[Any]]:
    """The scorecards submitted for an account (every column of `scorecards`), newest first; read on Core."""
    return list(db.execute(select(SCORECARDS).where(_CARD.account_id == account_id).order_by(_CARD.id.desc())))


def record_ids_of(db: Session | Connection, account_id: int) -> list[int]:
    """The ids of `records_of`, in its order, without reading the records."""
    return list(db.scalars(select(_CARD.id).where(_CARD.account_id == account_id).order_by(_CARD.id.desc())))


def record_dict(db: Session | Connection, row: Scorecard | Row[Any]) -> dict[str, Any]:
    """The JSON shape of a scorecard record, with its attachments."""
    return {
        "id": row.id,
        "account": row.content["account"]["id"],
        "as_of": row.as_of.isoformat(),
        "score": row.content["score"],
        "bucket": row.content["bucket"],
        "digest": row.digest,
        "state": row.state,
        "submitted_by": row.submitted_by,
        "submitted_at": row.submitted_at.isoformat(),
        "approver": row.approver,
        "approved_by": row.approved_by,
        "decided_at": row.decided_at.isoformat() if row.decided_at else None,
        "comment": row.comment,
        "decision_comment": row.decision_comment,
        "attachments": [attachments.link_dict(db, k) for k in attachments.links_of(db, KIND, row.id)],
    }
