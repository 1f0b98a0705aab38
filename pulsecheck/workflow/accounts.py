"""Accounts: import from CSV/JSON (all rows or none, streamed in bounded memory), list, show."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.storage.models import Account, User
from pulsecheck.workflow.imports import FileFormat, Problems, Row, chunks, iter_rows
from pulsecheck.workflow.staging import BulkStatement, SeenKeys, bulk_insert
from pulsecheck.yamlfile import suggest

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


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def import_accounts(session: Session, path: str | Path, fmt: FileFormat = FileFormat()) -> ImportResult:
    """Create or update accounts by external_id, streaming the file in chunks; any bad row (every one is
    reported, up to MAX_PROBLEMS) aborts the whole import.

    Updates touch only the columns present in the file (or keys present in a JSON record).
    """
    problems = Problems(str(path), fmt.limits.max_problems)
    users = dict(session.execute(select(User.name, User.id)).all())  # a team: small
    seen = SeenKeys(session)
    adding = bulk_insert(session, cast(Table, Account.__table__), STORED)
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


def get_account(session: Session, ref: str) -> Account:
    """An account by external id (or internal numeric id)."""
    account = session.scalar(select(Account).where(Account.external_id == ref))
    if account is None and ref.isdigit():
        account = session.get(Account, int(ref))
    if account is None:
        raise NotFoundError(f"unknown account {ref!r}")
    return account


def account_dict(account: Account) -> dict[str, Any]:
    """The stable JSON shape of an account."""

    def iso(value: date | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": account.external_id,
        "name": account.name,
        "segment": account.segment,
        "tier": account.tier,
        "arr": account.arr,
        "owner": account.owner.name if account.owner else None,
        "manager": account.manager.name if account.manager else None,
        "renewal_date": iso(account.renewal_date),
        "contract_start": iso(account.contract_start),
        "stage": account.stage,
    }
