"""Accounts: import from CSV/JSON (all rows or none, streamed in bounded memory), reassign a book. How the read
commands show them (list, show) is `account_views`, on SQLAlchemy Core."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session, joinedload

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.models import Account, Review, ReviewEvent, User
from pulsecheck.storage.tables import ACCOUNTS
from pulsecheck.vocab import MANAGER_ROLES
from pulsecheck.workflow import account_views as views
from pulsecheck.workflow.account_views import account_page as account_page  # the list on Core; the web API's import

if TYPE_CHECKING:  # the import machinery (csv, JSON, YAML) loads only for an import: not for a command that reads
    from pulsecheck.workflow.imports import FileFormat, Row
    from pulsecheck.workflow.staging import BulkStatement

COLUMNS = (
    "external_id",
    "name",
    "segment",
    "tier",
    "arr",
    "owner",
    "manager",
    "renewal_date",
    "contract_start",
    "stage",
)


_STORED_AS = {"owner": "owner_id", "manager": "manager_id"}  # file column: stored column (a user's id)
_COLUMN_OF = {stored: column for column, stored in _STORED_AS.items()}
STORED = tuple(_STORED_AS.get(column, column) for column in COLUMNS)


class ImportResult(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    created: int
    updated: int


def import_accounts(session: Session, path: str | Path, fmt: FileFormat | None = None) -> ImportResult:
    """Create or update accounts by external_id, streaming the file in chunks; any bad row (every one is
    reported, up to MAX_PROBLEMS) aborts the whole import.

    Updates touch only the columns present in the file (or keys present in a JSON record).
    """
    from pulsecheck.workflow.imports import FileFormat, Problems, chunks, iter_rows
    from pulsecheck.workflow.staging import SeenKeys, bulk_insert

    fmt = fmt or FileFormat()
    problems = Problems(str(path), fmt.limits.max_problems)
    users = dict(session.execute(select(User.name, User.id)).all())  # a team: small
    seen = SeenKeys(session)
    adding = bulk_insert(session, ACCOUNTS, STORED)
    created = updated = 0
    for chunk in chunks(iter_rows(path, ("external_id", "name"), fmt, problems)):
        if problems.full:
            break
        parsed = [(row, values) for row in chunk if (values := problems.check(row, _parser(users))) is not None]
        again = seen.repeated([(values["external_id"], row.number) for row, values in parsed])
        for row, values in parsed:
            if row.number in again:
                problems.add(
                    f"{row.where('external_id')}: {values['external_id']!r} already given in row {again[row.number]}",
                    row.number,
                )
        if not problems:
            new, changed = _store(session, parsed, adding)
            created, updated = created + new, updated + changed
    seen.close()
    problems.raise_if_any()
    return ImportResult(created=created, updated=updated)


def _store(session: Session, parsed: list[tuple[Row, dict[str, Any]]], adding: BulkStatement) -> tuple[int, int]:
    """Insert the new accounts of a chunk and update the stored ones; (created, updated)."""
    ids = [values["external_id"] for _, values in parsed]
    stored = dict(session.execute(select(Account.external_id, Account.id).where(Account.external_id.in_(ids))).all())
    new, changes = [], []
    for row, values in parsed:
        account_id = stored.get(values["external_id"])
        if account_id is None:
            new.append(values)
        else:
            # An update changes the columns the file has (an empty cell clears one); a column the file leaves
            # out, or a key a JSON record omits, keeps the stored value.
            kept = {key: value for key, value in values.items() if _COLUMN_OF.get(key, key) in row.values}
            changes.append({**kept, "id": account_id})
    adding.execute(new)
    if changes:
        session.execute(update(Account), changes)  # by primary key, grouped by the columns each row sets
    return len(new), len(changes)


def _parser(users: dict[str, int]) -> Callable[[Row], dict[str, Any]]:
    return lambda row: _parse_row(row, users)


def _parse_row(row: Row, users: dict[str, int]) -> dict[str, Any]:
    def person(column: str) -> int | None:
        name = row.text(column)
        if name is None:
            return None
        if name not in users:
            from pulsecheck.yamlfile import suggest

            raise InputError(f"{row.where(column)}: unknown user {name!r}{suggest(name, users)}")
        return users[name]

    arr = row.decimal("arr")
    if arr is not None and arr < 0:
        raise InputError(f"{row.where('arr')}: must not be negative")
    return {
        "external_id": row.text("external_id", required=True),
        "name": row.text("name", required=True),
        "segment": row.text("segment"),
        "tier": row.text("tier"),
        "arr": arr,
        "owner_id": person("owner"),
        "manager_id": person("manager"),
        "renewal_date": row.day("renewal_date"),
        "contract_start": row.day("contract_start"),
        "stage": row.text("stage"),
    }


def list_accounts(session: Session, segment: str | None = None) -> list[Account]:
    """Accounts by external id, optionally of one segment."""
    query = select(Account).order_by(Account.external_id)
    if segment:
        query = query.where(Account.segment == segment)
    return list(session.scalars(query))


def get_account(session: Session, ref: str, people: bool = False) -> Account:
    """An account by external id (or internal numeric id); with `people`, its owner and manager loaded with it
    (what `account_dict` reads) rather than one query each."""
    options = (joinedload(Account.owner), joinedload(Account.manager)) if people else ()
    account = session.scalar(select(Account).where(Account.external_id == ref).options(*options))
    if account is None and ref.isascii() and ref.isdigit():
        account = session.get(Account, int(ref), options=options)
    if account is None:
        raise NotFoundError(f"unknown account {ref!r}")
    return account


def account_dict(account: Account) -> dict[str, Any]:
    """The stable JSON shape of a mapped account (`account_views.account_dict`, with the names of its owner and
    manager), for a caller that holds the object."""
    owner, manager = account.owner, account.manager
    return views.account_dict(account, owner.name if owner else None, manager.name if manager else None)


class Reassigned(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """What `accounts reassign` moved: accounts owned, draft reviews reviewed, open reviews to approve and
    unresolved escalations owned; reviews it left to approve (the new owner reviews them or is no manager)."""

    accounts: int
    reviews: int
    approvals: int
    escalations: int
    left: list[int]


def reassign_book(session: Session, leaving: str, taking: str, actor: User, now: datetime, reason: str) -> Reassigned:
    """Move `leaving`'s book to `taking` in the caller's transaction: accounts they own, draft reviews they
    review, draft or submitted reviews they approve, unresolved escalations they own. The leaver's manager or
    an admin; each review gets an audited `reassign` event (escalations are audited rows themselves)."""
    from pulsecheck.storage.models import Escalation  # declared on first use: not for the commands that read

    old, new = _user(session, leaving, "--from"), _user(session, taking, "--to")
    if old.id == new.id:
        raise InputError("--from and --to name the same user")
    who = permissions.actor(actor.name, actor.role_set, {"its_owner": old.name}, {old.name: old.manager_name})
    if refused := permissions.refusal("accounts.reassign", who):
        raise RefusedError(refused)
    result = session.execute(update(Account).where(Account.owner_id == old.id).values(owner_id=new.id))
    accounts = cast(CursorResult[Any], result).rowcount
    note = f"{old.name} -> {new.name}: {reason.strip()}" if reason.strip() else f"{old.name} -> {new.name}"
    moved = approvals = 0
    left: list[int] = []
    for review in session.scalars(
        select(Review).where(
            ((Review.reviewer == old.name) & (Review.state == "draft"))
            | ((Review.approver == old.name) & Review.state.in_(("draft", "submitted")))
        ).order_by(Review.id)
    ):
        if review.reviewer == old.name and review.state == "draft":
            review.reviewer, moved, said = new.name, moved + 1, f"reviewer {note}"
            if review.approver == new.name:  # never one's own approver: the new reviewer's manager approves
                review.approver = new.manager_name
        elif review.reviewer == new.name or not new.role_set & MANAGER_ROLES:  # four-eyes; approvers manage
            left.append(review.id)
            continue
        else:
            review.approver, approvals, said = new.name, approvals + 1, f"approver {note}"
        review.updated_at = now
        session.add(ReviewEvent(review_id=review.id, event="reassign", from_state=review.state,
                                to_state=review.state, actor=actor.name, comment=said, at=now))
    escalations = 0
    for escalation in session.scalars(
        select(Escalation).where(Escalation.owner == old.name, Escalation.status != "resolved")
    ):
        escalation.owner, escalations = new.name, escalations + 1
    session.flush()
    return Reassigned(accounts, moved, approvals, escalations, left)


def _user(session: Session, name: str, what: str) -> User:
    """The user called `name` (workflow.users imports this module, so not its get_user)."""
    user = session.scalar(select(User).where(User.name == name))
    if user is None:
        raise NotFoundError(f"{what}: unknown user {name!r}")
    return user
