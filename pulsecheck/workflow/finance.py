"""The inputs of the scorecard's derived KPIs: account cash flows (npv) and account financials (ltv, and the
npv discount rate), imported all-or-nothing from CSV/JSON with the same streamed, strict machinery as readings.

Both are keyed (account and period; account), so a row for a stored key updates it: an export can be imported
again after a correction. A key given twice in one file is refused, naming both rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import select, tuple_, update
from sqlalchemy.orm import Session

from pulsecheck.errors import InputError
from pulsecheck.storage.models import AccountFinancials, Cashflow
from pulsecheck.storage.more_tables import ACCOUNT_FINANCIALS, CASHFLOWS
from pulsecheck.workflow.imports import FileFormat, InputImport, Problems, Row
from pulsecheck.workflow.inputs import checked_chunks
from pulsecheck.workflow.staging import BulkStatement, SeenKeys, bulk_insert

CASHFLOW_COLUMNS = ("account_id", "period", "amount")
FINANCIAL_COLUMNS = ("account_id", "arpu", "cac", "cost_to_serve", "expected_tenure_months", "discount_rate")
MAX_PERIOD = 10_000  # periods of a cash-flow plan: more is a typo (or a date where a period belongs)


def _period(text: str) -> int:
    if not (text.isascii() and text.isdigit()) or int(text) > MAX_PERIOD:
        raise ValueError(f"{text[:40]!r} is not a period (a whole number 0..{MAX_PERIOD:,})")
    return int(text)


def _cashflow(row: Row) -> dict[str, Any]:
    value = row.values.get("period")
    if isinstance(value, float) and value.is_integer():
        row.values["period"] = int(value)  # a JSON 3.0
    return {
        "account": row.text("account", required=True),
        "period": row.get("period", _period, required=True),
        "amount": row.decimal("amount", required=True),
    }


def _financials(row: Row) -> dict[str, Any]:
    values: dict[str, Any] = {"account": row.text("account", required=True)}
    for column in ("arpu", "cac", "cost_to_serve"):
        values[column] = _at_least_zero(row, column, row.decimal(column, required=True))
    tenure = row.decimal("expected_tenure_months")
    if tenure is not None and tenure <= 0:
        raise InputError(f"{row.where('expected_tenure_months')}: must be above 0 (months)")
    rate = row.decimal("discount_rate")
    if rate is not None and not 0 <= rate <= 1:
        raise InputError(f"{row.where('discount_rate')}: {rate:g} is not a fraction in [0, 1] (like 0.08)")
    return {**values, "expected_tenure_months": tenure, "discount_rate": rate}


def _at_least_zero(row: Row, column: str, value: float | None) -> float | None:
    if value is not None and value < 0:
        raise InputError(f"{row.where(column)}: {value:g} is below 0")
    return value


def import_cashflows(session: Session, path: str | Path, fmt: FileFormat = FileFormat()) -> InputImport:
    """Create or update cash flows by (account, period): C_t of each period t of an account's NPV."""
    return _keyed_import(
        session, path, fmt, ("account", "period", "amount"), _cashflow,
        key=lambda values: f"{values['period']}:{values['account']}",  # digits first: unambiguous, no NUL for PG
        shown=lambda values: f"account {values['account']!r} period {values['period']}",
        store=_store_cashflows(session),
    )  # fmt: skip


def import_financials(session: Session, path: str | Path, fmt: FileFormat = FileFormat()) -> InputImport:
    """Create or update account financials by account (arpu, cac, cost_to_serve; optional expected tenure and
    discount rate)."""
    return _keyed_import(
        session, path, fmt, ("account", "arpu", "cac", "cost_to_serve"), _financials,
        key=lambda values: str(values["account"]),
        shown=lambda values: f"account {values['account']!r}",
        store=_store_financials(session),
    )  # fmt: skip


def _keyed_import(
    session: Session,
    path: str | Path,
    fmt: FileFormat,
    required: tuple[str, ...],
    parse: Callable[[Row], dict[str, Any]],
    key: Callable[[dict[str, Any]], str],
    shown: Callable[[dict[str, Any]], str],
    store: Callable[[list[dict[str, Any]]], tuple[int, int]],
) -> InputImport:
    problems = Problems(str(path))
    seen = SeenKeys(session)
    created = updated = 0
    for good in checked_chunks(session, path, required, fmt, problems, parse):
        again = seen.repeated([(key(values), row.number) for row, values in good])
        for row, values in good:
            if row.number in again:
                message = f"{shown(values)} appears twice in the file (row {again[row.number]} and row {row.number})"
                problems.add(f"{row.where('account')}: {message}", row.number)
        if not problems and good:
            new, changed = store([values for _, values in good])
            created, updated = created + new, updated + changed
    seen.close()
    problems.raise_if_any()
    return InputImport(created=created, updated=updated)


def _store_cashflows(session: Session) -> Callable[[list[dict[str, Any]]], tuple[int, int]]:
    adding: BulkStatement = bulk_insert(session, CASHFLOWS, CASHFLOW_COLUMNS)

    def store(records: list[dict[str, Any]]) -> tuple[int, int]:
        keys = [(values["account_id"], values["period"]) for values in records]
        column = CASHFLOWS.c
        query = select(column.account_id, column.period).where(tuple_(column.account_id, column.period).in_(keys))
        stored = {(acc, period) for acc, period in session.execute(query)}
        new = [values for values in records if (values["account_id"], values["period"]) not in stored]
        changes = [
            {name: values[name] for name in CASHFLOW_COLUMNS}
            for values in records
            if (values["account_id"], values["period"]) in stored
        ]
        adding.execute(new)
        if changes:
            session.execute(update(Cashflow), changes)  # by primary key
        return len(new), len(changes)

    return store


def _store_financials(session: Session) -> Callable[[list[dict[str, Any]]], tuple[int, int]]:
    adding: BulkStatement = bulk_insert(session, ACCOUNT_FINANCIALS, FINANCIAL_COLUMNS)

    def store(records: list[dict[str, Any]]) -> tuple[int, int]:
        ids = [values["account_id"] for values in records]
        key = ACCOUNT_FINANCIALS.c.account_id
        stored = set(session.scalars(select(key).where(key.in_(ids))))
        new = [values for values in records if values["account_id"] not in stored]
        changes = [
            {name: values[name] for name in FINANCIAL_COLUMNS} for values in records if values["account_id"] in stored
        ]
        adding.execute(new)
        if changes:
            session.execute(update(AccountFinancials), changes)  # by primary key
        return len(new), len(changes)

    return store
