"""Accounts: import from CSV/JSON (all rows or none), list, show."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, NotFoundError
from pulsecheck.storage.models import Account, User
from pulsecheck.timeutil import parse_date
from pulsecheck.workflow.imports import Row, parse_number, read_rows

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


@dataclass(frozen=True)
class ImportResult:
    created: int
    updated: int


def import_accounts(session: Session, path: str | Path) -> ImportResult:
    """Create or update accounts by external_id; any bad row aborts the whole import.

    Updates touch only the columns present in the file (or keys present in a JSON record).
    """
    rows = read_rows(path, required_columns=("external_id", "name"))
    users = {u.name: u for u in session.scalars(select(User))}
    parsed = [_parse_row(row, users) for row in rows]
    seen: dict[str, int] = {}
    for row, values in zip(rows, parsed, strict=True):
        if values["external_id"] in seen:
            raise InputError(
                f"{row.where('external_id')}: {values['external_id']!r} "
                f"already given in row {seen[values['external_id']]}"
            )
        seen[values["external_id"]] = row.number
    existing = (
        {a.external_id: a for a in session.scalars(select(Account).where(Account.external_id.in_(list(seen))))}
        if seen
        else {}
    )
    created = 0
    for row, values in zip(rows, parsed, strict=True):
        account = existing.get(values["external_id"])
        if account is None:
            account = Account(external_id=values["external_id"])
            session.add(account)
            created += 1
        for key, value in values.items():
            # An update changes the columns the file has (an empty cell clears one); a column the file
            # leaves out, or a key a JSON record omits, keeps the stored value.
            if key != "external_id" and (account.id is None or key in row.values):
                setattr(account, key, value)
    session.flush()
    return ImportResult(created=created, updated=len(parsed) - created)


def _parse_row(row: Row, users: dict[str, User]) -> dict[str, Any]:
    def person(column: str) -> User | None:
        name = row.text(column)
        if name is None:
            return None
        if name not in users:
            raise InputError(f"{row.where(column)}: unknown user {name!r}")
        return users[name]

    arr = row.get("arr", parse_number)
    if arr is not None and arr < 0:
        raise InputError(f"{row.where('arr')}: must not be negative")
    return {
        "external_id": row.text("external_id", required=True),
        "name": row.text("name", required=True),
        "segment": row.text("segment"),
        "tier": row.text("tier"),
        "arr": arr,
        "owner": person("owner"),
        "manager": person("manager"),
        "renewal_date": row.get("renewal_date", parse_date),
        "contract_start": row.get("contract_start", parse_date),
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
