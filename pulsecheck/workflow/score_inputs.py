"""What scoring reads for one range of accounts: the newest KPI readings, survey responses in their windows and
the inputs of the derived KPIs (cash flows, financials, contract start, ARR readings).

Scoring works through the portfolio one range of account ids at a time, so memory is bounded by the range,
not by the portfolio; every query here is a range scan of an index that starts with the account id.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from sqlalchemy import String, and_, func, literal, null, select, true, type_coerce, union_all
from sqlalchemy.orm import Session, aliased

from pulsecheck.scoring.compute import Reading, SurveyResponse
from pulsecheck.scoring.formulas import Financials, FormulaInputs
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.storage.models import Account, AccountFinancials, Cashflow, KpiReading
from pulsecheck.storage.models import SurveyResponse as SurveyRow

ARR_KPI = "arr"  # arr_growth_pct reads the readings of this KPI
NO_INPUTS = FormulaInputs()
DEFAULT_SURVEY_WINDOW = timedelta(days=90)
# Reading(...) and SurveyResponse(...) with every field given, without the NamedTuple's Python-level __new__:
# scoring makes one per reading and response read (a fifth of their reading time).
_new = tuple.__new__


class Moments:
    """Timestamps as they come from the driver (text on SQLite, naive datetimes on PostgreSQL) to aware UTC,
    each distinct value converted once: the times of a feed repeat across accounts, and converting every row
    through the column type cost a third of scoring's reading time."""

    def __init__(self) -> None:
        self.memo: dict[Any, datetime] = {}

    def __call__(self, value: Any) -> datetime:
        found = self.memo.get(value)
        if found is None:
            parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
            found = parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
            if len(self.memo) > 10_000:  # bounded: distinct times just cost the conversion each
                self.memo.clear()
            self.memo[value] = found
        return found


def reading_kpis(model: ScoringModel) -> list[str]:
    """The KPIs whose values come from readings: neither survey nor formula KPIs."""
    return [k.name for k in model.kpis if not k.from_surveys and not k.formula]


def latest_readings(
    session: Session, as_of: datetime, kpis: list[str], first: int, last: int, moments: Moments | None = None
) -> dict[int, list[Reading]]:
    """The newest readings per (account, kpi) at `as_of` for accounts first..last, ties included (they reveal
    duplicates): the newest time of each account and KPI, one index seek each, then the readings at that time.

    Seeking the newest time per pair costs the same however long a KPI's history is; grouping the range's
    readings (what this did before) read every reading of the range, 2x slower at 10 readings per KPI."""
    if not kpis:
        return {}
    names = [select(literal(kpi, String).label("kpi")) for kpi in kpis]
    wanted = (union_all(*names) if len(names) > 1 else names[0]).subquery("wanted")
    older = aliased(KpiReading, name="older")
    newest_time = (
        select(func.max(older.observed_at))
        .where(older.account_id == Account.id, older.kpi == wanted.c.kpi, older.observed_at <= as_of)
        .scalar_subquery()
    )
    # MATERIALIZED: without it SQLite folds the pairs into the outer join and scans the range's readings again.
    # LEFT JOIN (`wanted` is never empty, so it is the inner join's rows): SQLite keeps a left join's order, so the
    # seeks go account by account, each account's KPIs next to each other in the index, where the inner join put
    # the 4-row `wanted` outside and sought KPI by KPI across the whole range (1.6 -> 1.2 s per 100k accounts).
    newest = (
        select(Account.id.label("account_id"), wanted.c.kpi, newest_time.label("at"))
        .select_from(Account)
        .join(wanted, true(), isouter=True)
        .where(Account.id.between(first, last))
        .cte("newest")
        .prefix_with("MATERIALIZED")
    )
    moment = moments or Moments()
    query = (
        select(KpiReading.account_id, KpiReading.kpi, KpiReading.value, _raw(KpiReading.observed_at), KpiReading.source)
        .select_from(newest)
        .join(
            KpiReading,
            and_(
                KpiReading.account_id == newest.c.account_id,
                KpiReading.kpi == newest.c.kpi,
                KpiReading.observed_at == newest.c.at,
            ),
        )
    )
    result: dict[int, list[Reading]] = {}
    known = moment.memo
    for account_id, kpi, value, observed_at, source in _rows(session, query):
        reading = _new(Reading, (kpi, value, known.get(observed_at) or moment(observed_at), source or ""))
        same = result.get(account_id)
        if same is None:
            result[account_id] = [reading]
        else:
            same.append(reading)
    return result


def _rows(session: Session, query: Any) -> Sequence[Any]:
    """The rows of a column query as the DB-API returns them (plain tuples), fetched at once: the ORM's result
    handling, or SQLAlchemy's Row objects, cost more per row than the database spent on it. These queries load
    no objects and select no column whose type converts results (timestamps come raw, for `Moments`; ids,
    names and floats come from both drivers as they are), so the driver's rows are the rows."""
    result = session.connection().execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


@lru_cache(maxsize=4096)
def _day(value: Any) -> date | None:
    """A date column's value as the driver returns it (text on SQLite) as a date; contract starts repeat."""
    return date.fromisoformat(value) if isinstance(value, str) else value


def _raw(column: Any) -> Any:
    """A timestamp column as the driver returns it, for `Moments` to convert."""
    return type_coerce(column, String).label(column.key)


def surveys(
    session: Session, model: ScoringModel, as_of: datetime, first: int, last: int, moments: Moments | None = None
) -> dict[int, list[SurveyResponse]]:
    """Survey responses of accounts first..last within the longest window of the model's survey KPIs."""
    windows = [k.window or DEFAULT_SURVEY_WINDOW for k in model.kpis if k.from_surveys]
    result: dict[int, list[SurveyResponse]] = {}
    if not windows:
        return result
    moment = moments or Moments()
    query = select(
        SurveyRow.account_id, SurveyRow.kind, SurveyRow.score, SurveyRow.max_score, _raw(SurveyRow.responded_at)
    ).where(
        SurveyRow.account_id.between(first, last),
        SurveyRow.responded_at <= as_of,
        SurveyRow.responded_at >= as_of - max(windows),
    )
    known = moment.memo
    for account_id, kind, score, max_score, responded_at in _rows(session, query):
        response = _new(SurveyResponse, (kind, score, max_score, known.get(responded_at) or moment(responded_at)))
        same = result.get(account_id)
        if same is None:
            result[account_id] = [response]
        else:
            same.append(response)
    return result


def formula_inputs(
    session: Session, model: ScoringModel, as_of: datetime, first: int, last: int
) -> dict[int, FormulaInputs]:
    """The derived KPIs' inputs of accounts first..last; only what the model's formulas use is read.

    One pass over the range's accounts: each with its contract start, its financials and its cash flows in
    period order (one row per cash flow, at least one per account)."""
    used = {k.formula for k in model.kpis if k.formula}
    if not used:
        return {}
    with_flows, with_money = "npv" in used, bool(used & {"npv", "ltv"})
    with_start = bool(used & {"ltv", "tenure_months"})
    money, flows = AccountFinancials, Cashflow
    columns: list[Any] = [Account.id, _raw(Account.contract_start) if with_start else null()]
    columns += [money.arpu, money.cac, money.cost_to_serve, money.expected_tenure_months, money.discount_rate] if (
        with_money
    ) else [null()] * 5  # fmt: skip
    columns += [flows.period, flows.amount] if with_flows else [null(), null()]
    query = select(*columns).where(Account.id.between(first, last))
    if with_money:
        query = query.outerjoin(money, money.account_id == Account.id)
    if with_flows:  # the cash flows' primary key order: npv sums in period order
        query = query.outerjoin(flows, flows.account_id == Account.id).order_by(Account.id, flows.period)
    result: dict[int, FormulaInputs] = {}
    account = None
    cashflows: list[tuple[int, float]] = []
    found = NO_INPUTS
    for acc, start, arpu, cac, cost, tenure, rate, period, amount in _rows(session, query):
        if acc != account:
            if account is not None:
                result[account] = found._replace(cashflows=tuple(cashflows)) if cashflows else found
            account, cashflows = acc, []
            found = FormulaInputs(
                (), Financials(arpu, cac, cost, tenure, rate) if arpu is not None else None, _day(start)
            )
        if period is not None:
            cashflows.append((period, amount))
    if account is not None:
        result[account] = found._replace(cashflows=tuple(cashflows)) if cashflows else found
    if "arr_growth_pct" in used:
        arr_now, arr_then = _arr(session, model, as_of, first, last)
        for acc in arr_now.keys() | arr_then.keys():
            result[acc] = result.get(acc, NO_INPUTS)._replace(arr_now=arr_now.get(acc), arr_then=arr_then.get(acc))
    return result


def _arr(
    session: Session, model: ScoringModel, as_of: datetime, first: int, last: int
) -> tuple[dict[int, float], dict[int, float]]:
    """The newest `arr` reading of each account at as_of, and at as_of minus the arr_growth_pct window."""
    window = next(k.window for k in model.kpis if k.formula == "arr_growth_pct")
    assert window is not None  # parse_model requires it
    now = {acc: rows[0].value for acc, rows in latest_readings(session, as_of, [ARR_KPI], first, last).items()}
    then_rows = latest_readings(session, as_of - window, [ARR_KPI], first, last)
    return now, {acc: rows[0].value for acc, rows in then_rows.items()}


def account_chunks(session: Session, size: int, account_id: int | None = None) -> Iterator[list[int]]:
    """The account ids in id order, `size` at a time (one account when `account_id` is given); each chunk is
    its own query from where the last one ended, so no cursor stays open while a chunk is written."""
    if account_id is not None:
        if found := list(session.scalars(select(Account.id).where(Account.id == account_id))):
            yield found
        return
    after = -1
    while ids := [row[0] for row in _rows(session, _chunk_query(after, size))]:
        yield ids
        after = ids[-1]


def _chunk_query(after: int, size: int) -> Any:
    return select(Account.id).where(Account.id > after).order_by(Account.id).limit(size)
