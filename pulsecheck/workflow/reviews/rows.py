"""A review's event as rows, for a transition of a review its session has not loaded (the CLI's, one per
command): what the guards and signatures read (the review, its account, its reviewer's manager, its template) in
a prebuilt Core statement, and what the event writes (the review's versioned UPDATE, its audit row) in two more,
handed to the commit hooks as written rows. No ORM loading and no unit of work: the same reads, rows and audit
chain entries as the loaded path of `lifecycle.transition`, at a fraction of its Python work."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import JSON, Connection, CursorResult, Table, bindparam, literal_column, null, select, union_all
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError
from sqlalchemy.sql.functions import GenericFunction

from pulsecheck.notifications import notices
from pulsecheck.states import review as machine
from pulsecheck.storage import chain
from pulsecheck.storage.bulk import WROTE, execute_one, fetch_one, transient
from pulsecheck.storage.hooks import written
from pulsecheck.storage.models import Account, Review, ReviewEvent
from pulsecheck.storage.tables import (
    ACCOUNTS,
    ATTACHMENT_LINKS,
    MITIGATION_ACTIONS,
    REVIEW_EVENTS,
    REVIEWS,
    RISKS,
    USERS,
)
from pulsecheck.workflow import attachments


def _keys(model: type[Any], table: Table) -> tuple[str, ...]:
    """The attribute names of a table's columns, in the table's order (what a row of `select(table)` holds)."""
    mapper = model.__mapper__
    return tuple(mapper.get_property_by_column(column).key for column in table.c)


_REVIEW_KEYS = _keys(Review, REVIEWS)
_ACCOUNT_KEYS = _keys(Account, ACCOUNTS)
# Of its reviewer and approver: whether they exist, the reviewer's manager (the guards'), what their notice reads.
_USER_KEYS = tuple(dict.fromkeys(("id", "manager_name", *notices.USER_COLUMNS)))
_SPLIT = len(_REVIEW_KEYS)
_PEOPLE = _SPLIT + len(_ACCOUNT_KEYS)
_APPROVERS = USERS.alias("approvers")


class _JsonArray(GenericFunction[Any]):
    """A JSON array of its arguments: SQLite's `json_array`, PostgreSQL's `json_build_array`."""

    name = "json_array"
    _register = False  # not what `func.json_array` makes elsewhere
    inherit_cache = True


class _JsonArrays(GenericFunction[Any]):
    """The JSON array of its argument over a group's rows: SQLite's `json_group_array`, PostgreSQL's `json_agg`
    (NULL over no rows, where SQLite's is `[]`)."""

    name = "json_group_array"
    _register = False
    type = JSON()
    inherit_cache = True


@compiles(_JsonArray, "postgresql")
def _json_build_array(element: _JsonArray, compiler: Any, **kw: Any) -> str:
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


@compiles(_JsonArrays, "postgresql")
def _json_agg(element: _JsonArrays, compiler: Any, **kw: Any) -> str:
    return f"json_agg({compiler.process(element.clauses, **kw)})"


# Its risks, actions and attachments as one JSON array of records, each [kind, number, five texts, an integer, a
# date] with its record's fields in the order of the template's records (`RiskData`, `ActionData`,
# `AttachmentData`), sorted by kind then number when read, as `views.content_of` reads them.
_RISK, _ACTION, _ATTACHMENT = 0, 1, 2
_RECORDS = union_all(
    select(
        literal_column(str(_RISK)).label("kind"),
        RISKS.c.number,
        RISKS.c.description.label("a"),
        RISKS.c.evidence.label("b"),
        RISKS.c.category.label("c"),
        RISKS.c.severity.label("d"),
        RISKS.c.impact.label("e"),
        null().label("risk_number"),
        null().label("due_date"),
    ).where(RISKS.c.review_id == bindparam("review_id")),
    select(
        literal_column(str(_ACTION)),
        MITIGATION_ACTIONS.c.number,
        MITIGATION_ACTIONS.c.description,
        MITIGATION_ACTIONS.c.owner,
        MITIGATION_ACTIONS.c.success_criteria,
        MITIGATION_ACTIONS.c.status,
        null(),
        MITIGATION_ACTIONS.c.risk_number,
        MITIGATION_ACTIONS.c.due_date,
    ).where(MITIGATION_ACTIONS.c.review_id == bindparam("review_id")),
    select(
        literal_column(str(_ATTACHMENT)),
        ATTACHMENT_LINKS.c.number,
        ATTACHMENT_LINKS.c.filename,
        ATTACHMENT_LINKS.c.sha256,
        ATTACHMENT_LINKS.c.note,
        null(),
        null(),
        null(),
        null(),
    ).where(
        ATTACHMENT_LINKS.c.record_kind == bindparam("record_kind"),
        ATTACHMENT_LINKS.c.record_id == bindparam("review_id"),
    ),
).subquery("records")
_TEMPLATE = select(_JsonArrays(_JsonArray(*_RECORDS.c))).scalar_subquery()

# Built once (the engine caches its compiled form): the review with its account, its reviewer (whose manager is
# the permission table's `reviewer_manager`), its approver (the two users are also whom the event's notice goes
# to: `notices.know_users`) and its template's records, in one row.
_REVIEW = (
    select(
        REVIEWS,
        ACCOUNTS,
        *(USERS.c[key] for key in _USER_KEYS),
        *(_APPROVERS.c[key] for key in _USER_KEYS),
        _TEMPLATE,
    )
    .join(ACCOUNTS, ACCOUNTS.c.id == REVIEWS.c.account_id)
    .outerjoin(USERS, USERS.c.name == REVIEWS.c.reviewer)
    .outerjoin(_APPROVERS, _APPROVERS.c.name == REVIEWS.c.approver)
    .where(REVIEWS.c.id == bindparam("review_id"))
)

# The event's writes: the review's update (its version checked, as the unit of work checks it) and its audit row.
UPDATE_REVIEW = REVIEWS.update().where(
    REVIEWS.c.id == bindparam("review_id_"), REVIEWS.c.version_id == bindparam("version_")
)
_UPDATE_REVIEW_HEAD = UPDATE_REVIEW.returning(*chain.HEAD_COLUMNS)
INSERT_EVENT = REVIEW_EVENTS.insert()


@dataclass(frozen=True)
class EventRows:
    """What a review's event is decided on, read as rows: the review's and its account's column values, the
    reviewer's manager, and the template the guards and signatures see."""

    review: dict[str, Any]
    account: dict[str, Any]
    reviewer_manager: str | None
    content: machine.ReviewContent
    people: tuple[dict[str, Any], ...] = ()  # the reviewer's and approver's user rows, those that exist


def read(session: Session, review_id: int, connection: Connection | None = None) -> EventRows | None:
    """The rows of review `review_id` for deciding an event (None: no such review), read on the session's
    connection in one statement: the caller has checked that the session holds nothing unflushed."""
    connection = session.connection() if connection is None else connection
    row = fetch_one(connection, _REVIEW, {"review_id": review_id, "record_kind": attachments.REVIEW})
    if row is None:
        return None
    review = dict(zip(_REVIEW_KEYS, row[:_SPLIT], strict=True))
    account = dict(zip(_ACCOUNT_KEYS, row[_SPLIT:_PEOPLE], strict=True))
    width = len(_USER_KEYS)
    reviewer, approver = (dict(zip(_USER_KEYS, row[at : at + width], strict=True)) for at in (_PEOPLE, _PEOPLE + width))
    people = tuple(user for user in (reviewer, approver) if user["id"] is not None)
    content = _content(review, account["external_id"], row[-1] or ())
    return EventRows(review, account, reviewer["manager_name"], content, people)


def _content(review: dict[str, Any], account: str, records: Iterable[list[Any]]) -> machine.ReviewContent:
    """The template of a review from its row and its records (`_TEMPLATE`): the same values `views.content_of`
    reads from a loaded review."""
    found: tuple[list[Any], list[Any], list[Any]] = ([], [], [])
    for kind, number, a, b, c, d, e, risk_number, due_date in sorted(records, key=itemgetter(0, 1)):
        if kind == _RISK:
            found[_RISK].append(machine.RiskData(number, a, b, c, d, e))
        elif kind == _ACTION:
            due = None if due_date is None else date.fromisoformat(due_date)
            found[_ACTION].append(machine.ActionData(number, a, risk_number, b, due, c, d))
        else:
            found[_ATTACHMENT].append(machine.AttachmentData(number, a, b, c))
    return machine.ReviewContent(
        account=account,
        reviewer=review["reviewer"],
        approver=review["approver"],
        account_goals=review["account_goals"],
        goal_summary=review["goal_summary"],
        overall_assessment=review["overall_assessment"],
        next_review_date=review["next_review_date"],
        employee_comments=review["employee_comments"],
        manager_comments=review["manager_comments"],
        risks=tuple(found[_RISK]),
        actions=tuple(found[_ACTION]),
        attachments=tuple(found[_ATTACHMENT]),
        baseline=review["baseline"],
    )


def update_review(
    session: Session, review_id: int, version: int, changes: dict[str, Any], connection: Connection | None = None
) -> None:
    """The review's new values, refused (StaleDataError, as a flush would be) when someone else changed it since
    it was read at `version` (optimistic locking). On the session's connection (the ORM's execute, with its
    events and option handling, cost more than the statement), the session marked as having written, as its
    `do_orm_execute` listener would mark it for the scheduler's fence, which checks its lease before a transaction
    that wrote commits. On SQLite the same statement reads the audit chain's head for the commit hook that appends
    to it (`chain.known_head`): one SELECT less per transition."""
    params = changes | {"version_id": version + 1, "review_id_": review_id, "version_": version}
    connection = session.connection() if connection is None else connection
    session.info[WROTE] = True
    if connection.dialect.name == "sqlite":
        row: Any = execute_one(connection, _UPDATE_REVIEW_HEAD, params).fetchone()
        if row is None:
            raise StaleDataError(_STALE)
        chain.known_head(session, row[0], row[1])
    elif cast(CursorResult[Any], connection.execute(UPDATE_REVIEW, params)).rowcount != 1:
        raise StaleDataError(_STALE)


_STALE = "UPDATE statement on table 'reviews' expected to update 1 row(s); 0 were matched."


def insert_event(session: Session, row: dict[str, Any], connection: Connection | None = None) -> int:
    """Insert an audit row; its id. On the session's connection (the review's update, which comes first, marked
    the session as written); on SQLite as `bulk.execute_one` sends it."""
    connection = session.connection() if connection is None else connection
    if connection.dialect.name == "sqlite":
        return int(execute_one(connection, INSERT_EVENT, row).lastrowid)
    inserted = cast(CursorResult[Any], connection.execute(INSERT_EVENT, row)).inserted_primary_key
    assert inserted is not None  # a single-row insert always has its key
    return int(inserted[0])


def write(
    session: Session,
    rows: EventRows,
    changes: dict[str, Any],
    event: dict[str, Any],
    connection: Connection | None = None,
) -> dict[str, Any]:
    """Write a decided event of a review read by `read`: its row and its audit row, handed to the commit hooks
    (jobs, notices, the audit chain) as written rows with the review's account, as the loaded path hands them.
    Returns the review's column values as they now are (`lifecycle.transition` makes them a persistent object;
    `lifecycle.advance`, for a caller that needs only the new state, does not)."""
    review_id, version = rows.review["id"], rows.review["version_id"]
    connection = session.connection() if connection is None else connection
    update_review(session, review_id, version, changes, connection)
    values = rows.review | changes | {"version_id": version + 1}
    event = event | {"review_id": review_id}
    event_id = insert_event(session, event, connection)
    account = transient(Account, [rows.account])[0]
    hooked = transient(Review, [values | {"account": account}])[0]
    written(session, [transient(ReviewEvent, [event | {"id": event_id, "review": hooked}])[0], hooked])
    notices.know_users(session, rows.people)
    return values
