"""Facts: one flat dict per account as of a moment, computed in bulk with SQL (a few queries, not one per account).

The names are the facts catalogue of DESIGN.md section 6; windowed families (`score_drop_<N>d`...) are
computed only for the windows the rules use. A fact that cannot be known (no snapshot, no renewal date)
is None: every comparison on it is false, only `missing` is true.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Text, and_, bindparam, case, cast, func, or_, select, true
from sqlalchemy.orm import Session

from pulsecheck.storage.bulk import among, table_of
from pulsecheck.storage.models import Account, Escalation, Issue, KpiReading, Review, ReviewEvent, ScoreSnapshot
from pulsecheck.vocab import SEVERITIES


@dataclass(frozen=True)
class IdRange:
    """Accounts `first` to `last` (inclusive): a block of a shard, read as index range scans."""

    first: int
    last: int


Scope = list[int] | IdRange | None  # some accounts, a range of them, or all
ISSUE_COUNTS = {"open_complaints": "complaint", "open_billing_issues": "billing", "open_blockers": "blocker"}


def _ranked_snapshots(kind: str, since: bool = False) -> Any:
    """Snapshots up to `:until` (and from `:since`) of the accounts, numbered 1 = newest per account (the scope
    inside the window's subquery: not every database pushes it down)."""
    query = select(
        ScoreSnapshot.account_id,
        ScoreSnapshot.score,
        ScoreSnapshot.bucket,
        ScoreSnapshot.components,
        ScoreSnapshot.groups,
        ScoreSnapshot.as_of,
        func.row_number().over(partition_by=ScoreSnapshot.account_id, order_by=ScoreSnapshot.as_of.desc()).label("rn"),
    ).where(ScoreSnapshot.as_of <= bindparam("until"))
    if since:
        query = query.where(ScoreSnapshot.as_of >= bindparam("since"))
    return _scoped(query, ScoreSnapshot.account_id, kind).subquery()


# Each query is built once per shape (what it reads, the scope's kind, the windows' days), its moments, ids and
# KPI bound at execution: building and compiling the nine or so statements anew for every block of a sharded run
# cost more client CPU than reading their rows; built once, SQLAlchemy's compiled cache serves them.
_BUILT: dict[tuple[Any, ...], Any] = {}


def _built(key: tuple[Any, ...], build: Callable[[], Any]) -> Any:
    statement = _BUILT.get(key)
    if statement is None:
        statement = _BUILT[key] = build()
    return statement


def _kind(account_ids: Scope) -> str:
    if account_ids is None:
        return "all"
    return "range" if isinstance(account_ids, IdRange) else "list"


def _bound(account_ids: Scope, **params: Any) -> dict[str, Any]:
    """The parameters of a query scoped to `account_ids`."""
    if isinstance(account_ids, IdRange):
        params.update(first=account_ids.first, last=account_ids.last)
    elif account_ids is not None:
        params["ids"] = list(account_ids)
    return params


def _rows(session: Session, query: Any, params: dict[str, Any]) -> Sequence[Any]:
    """The rows of a Core query on the session's connection, fetched at once (no ORM result machinery, and
    no round of the DBAPI cursor per row)."""
    return session.connection().execute(query, params).all()


def _scoped(query: Any, column: Any, kind: str) -> Any:
    if kind == "range":
        return query.where(column.between(bindparam("first"), bindparam("last")))
    return query if kind == "all" else query.where(among(column, "ids"))


def compute_facts(
    session: Session,
    as_of: datetime,
    windows: Mapping[str, Iterable[int]] | None = None,
    low_threshold: float | None = None,
    account_ids: Scope = None,
) -> dict[int, dict[str, Any]]:
    """Facts for every account (or `account_ids`) as of `as_of`."""
    spans = {family: sorted(set(days)) for family, days in (windows or {}).items()}
    if session.get_bind().dialect.name == "postgresql":
        # These queries are small (a block of accounts) but their estimated cost can pass `jit_above_cost` (the
        # snapshot query's index probes, counted for every account): compiling them cost more than running them.
        session.connection().exec_driver_sql("SET LOCAL jit = off")
    facts = _account_facts(session, as_of, account_ids)
    _snapshot_facts(session, facts, as_of, spans, low_threshold, account_ids)
    _issues(session, facts, as_of, spans, account_ids)
    _reviews(session, facts, as_of, account_ids)
    _kpi_windows(session, facts, as_of, spans, account_ids)
    _ticket_windows(session, facts, as_of, spans, account_ids)
    return facts


def _account_facts(session: Session, as_of: datetime, account_ids: Scope) -> dict[int, dict[str, Any]]:
    """The facts read from the account row, and every other fact at its value when nothing says otherwise."""
    columns = (
        Account.id, Account.segment, Account.tier, Account.arr, Account.stage, Account.renewal_date,
        Account.contract_start,
    )  # fmt: skip
    today = as_of.date()
    unknown = {
        "score": None, "bucket": None, "stale_inputs": None, "missing_inputs": None, "concerns": None,
        "low_score_streak": 0, "days_since_last_review": None, "has_open_review": False, "open_escalations": 0,
        **dict.fromkeys(ISSUE_COUNTS, 0),
    }  # fmt: skip
    facts: dict[int, dict[str, Any]] = {}
    query = _built(("accounts", _kind(account_ids)), lambda: _scoped(select(*columns), Account.id, _kind(account_ids)))
    for acc, segment, tier, arr, stage, renewal, contract in _rows(session, query, _bound(account_ids)):
        facts[acc] = {
            "segment": segment,
            "tier": tier,
            "arr": arr,
            "stage": stage,
            "days_to_renewal": (renewal - today).days if renewal else None,
            "days_since_contract": (today - contract).days if contract else None,
            **unknown,
        }
    return facts


def _snapshot_facts(
    session: Session,
    facts: dict[int, dict[str, Any]],
    as_of: datetime,
    windows: Mapping[str, list[int]],
    low_threshold: float | None,
    account_ids: Scope,
) -> None:
    """The facts of each account's snapshots up to `as_of`, in one pass over them (one scan and one sort, where
    three queries each ranked the same rows): the newest one's score, bucket and scorecard, the peak of each
    `max_score`/`score_drop` window, and the streak of low scores; `score_change` windows rank older snapshots."""
    peaks = sorted(set(windows.get("score_drop", [])) | set(windows.get("max_score", [])))
    low = low_threshold is not None
    kind, postgres = _kind(account_ids), session.get_bind().dialect.name == "postgresql"
    build = _newest_snapshots_pg if postgres else _newest_snapshots
    query = _built(("snapshots", kind, tuple(peaks), low, postgres), lambda: build(kind, peaks, low))
    params = _bound(account_ids, until=as_of, **{f"since_{days}": as_of - timedelta(days=days) for days in peaks})
    if low:
        params["low"] = low_threshold
    found = {row[0]: row for row in _rows(session, query, params)}
    for acc, row in found.items():
        fact = facts.get(acc)
        if fact is None:
            continue
        fact["score"], fact["bucket"] = row[1], row[2]
        _scorecard_facts(fact, _json(row[3]), None if row[4] is None else _json(row[4]))
    _score_changes(session, facts, as_of, windows, account_ids)
    for number, days in enumerate(peaks, start=5):
        highest, drop = f"max_score_{days}d", f"score_drop_{days}d"  # named once, not once per account
        for acc, fact in facts.items():
            row = found.get(acc)
            peak, now_score = None if row is None else row[number], fact["score"]
            fact[highest] = peak
            fact[drop] = None if peak is None or now_score is None else round(max(0.0, peak - now_score), 2)
    if low_threshold is not None:
        for acc, row in found.items():
            if acc in facts:
                first, count = row[-2], row[-1]
                facts[acc]["low_score_streak"] = count if first is None else first - 1


def _newest_snapshots(kind: str, peaks: list[int], low: bool) -> Any:
    """Per account: the newest snapshot's score, bucket, components and groups, the peak score of each window of
    `peaks` (from `:since_<days>`) and, with `low`, the rank of the newest score not under `:low` and the count."""
    ranked = _ranked_snapshots(kind)
    newest = ranked.c.rn == 1

    def of_newest(column: Any) -> Any:
        return func.max(case((newest, column)))

    columns = [
        ranked.c.account_id,
        of_newest(ranked.c.score),
        of_newest(ranked.c.bucket),
        of_newest(cast(ranked.c.components, Text)),  # one row per account carries it: read as text, parsed here
        of_newest(cast(ranked.c.groups, Text)),
        *(func.max(case((ranked.c.as_of >= bindparam(f"since_{days}"), ranked.c.score))) for days in peaks),
    ]
    if low:
        first_ok = or_(ranked.c.score >= bindparam("low"), ranked.c.score.is_(None))
        columns += [func.min(case((first_ok, ranked.c.rn))), func.count()]
    return select(*columns).group_by(ranked.c.account_id)


def _newest_snapshots_pg(kind: str, peaks: list[int], low: bool) -> Any:
    """`_newest_snapshots`' rows on PostgreSQL, without ranking: each account's snapshots are aggregated from the
    narrow columns (newest time, peaks, the newest score not under `:low`, count), and only the newest snapshot's
    row, components and groups included, is read, by one index probe (ranking sorted every snapshot with its
    JSON, for a tenth of the rows kept). A snapshot's time is unique per account (uq_score_snapshots_account_as_of),
    so the newest one is the one ranked first, and the rank of the newest score not under `:low` is one more than
    the snapshots newer than it (counted only for accounts whose newest score is under it)."""
    snapshots = table_of(ScoreSnapshot)
    ok = or_(snapshots.c.score >= bindparam("low"), snapshots.c.score.is_(None))
    columns = [
        snapshots.c.account_id,
        func.max(snapshots.c.as_of).label("newest"),
        *(
            func.max(case((snapshots.c.as_of >= bindparam(f"since_{days}"), snapshots.c.score))).label(f"peak_{days}")
            for days in peaks
        ),
    ]
    if low:
        columns += [func.max(case((ok, snapshots.c.as_of))).label("newest_ok"), func.count().label("n")]
    grouped = _scoped(
        select(*columns).where(snapshots.c.as_of <= bindparam("until")).group_by(snapshots.c.account_id),
        snapshots.c.account_id,
        kind,
    ).subquery("g")
    newest = snapshots.alias("s")
    row = (
        select(newest.c.score, newest.c.bucket, cast(newest.c.components, Text).label("components"),
               cast(newest.c.groups, Text).label("groups"))
        .where(newest.c.account_id == grouped.c.account_id, newest.c.as_of == grouped.c.newest)
        .limit(1)  # a lateral probe per account (a join let the planner hash the whole table)
        .lateral("r")
    )  # fmt: skip
    selected = [
        grouped.c.account_id, row.c.score, row.c.bucket, row.c.components, row.c.groups,
        *(grouped.c[f"peak_{days}"] for days in peaks),
    ]  # fmt: skip
    if low:
        later = snapshots.alias("n")
        newer = (
            select(func.count())
            .where(
                later.c.account_id == grouped.c.account_id,
                later.c.as_of > grouped.c.newest_ok,
                later.c.as_of <= bindparam("until"),
            )
            .scalar_subquery()
        )
        first = case(
            (grouped.c.newest_ok.is_(None), None), (grouped.c.newest_ok == grouped.c.newest, 1), else_=newer + 1
        )
        selected += [first, grouped.c.n]
    return select(*selected).select_from(grouped.join(row, true()))


def _scorecard_facts(fact: dict[str, Any], components: list[dict[str, Any]], groups: dict[str, Any] | None) -> None:
    """The count of stale and missing inputs, every KPI's value (tracked ones too) and rating, the count of areas
    of concern and the group subscores; snapshots scored before ratings existed have none (their `concerns` stays
    unknown). One pass over the components: this runs for every account of a run."""
    stale = missing = concerns = 0
    rated = False
    for c in components:
        status = c["status"]
        if status == "stale":
            stale += 1
        elif status == "missing":
            missing += 1
        kpi = c["kpi"]
        fact[f"kpi.{kpi}"] = c["raw"]
        rating = fact[f"kpi_status.{kpi}"] = c.get("rating")
        if "rating" in c:
            rated = True
            concerns += rating == "concern"
    fact["stale_inputs"], fact["missing_inputs"] = stale, missing
    fact["concerns"] = concerns if rated else None
    for name, subscore in (groups or {}).items():
        fact[f"group.{name}"] = subscore


# The stored JSON text of a snapshot's components, parsed by json's C scanner itself (json.loads adds two Python
# calls and a whitespace check per text: a tenth of the facts' own time over a portfolio's snapshots).
_scan = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[attr-defined]


def _json(text: str) -> Any:
    try:
        return _scan(text, 0)[0]
    except StopIteration:  # not JSON text: json.loads says why
        return json.loads(text)


def _score_changes(
    session: Session,
    facts: dict[int, dict[str, Any]],
    as_of: datetime,
    windows: Mapping[str, list[int]],
    account_ids: Scope,
) -> None:
    for days in windows.get("score_change", []):
        query = _built(("score_change", _kind(account_ids)), lambda: _newest_scores(_kind(account_ids)))
        before = {
            acc: score for acc, score in _rows(session, query, _bound(account_ids, until=as_of - timedelta(days=days)))
        }
        name = f"score_change_{days}d"
        for acc, fact in facts.items():
            old, now_score = before.get(acc), fact["score"]
            fact[name] = None if old is None or now_score is None else round(now_score - old, 2)


def _newest_scores(kind: str) -> Any:
    ranked = _ranked_snapshots(kind)
    return select(ranked.c.account_id, ranked.c.score).where(ranked.c.rn == 1)


def _issues(
    session: Session,
    facts: dict[int, dict[str, Any]],
    as_of: datetime,
    windows: Mapping[str, list[int]],
    account_ids: Scope,
) -> None:
    kind = _kind(account_ids)
    counts: dict[tuple[int, str], int] = defaultdict(int)
    for acc, issue_kind, count in _rows(
        session, _built(("issues", kind), lambda: _open_issues(kind)), _bound(account_ids, as_of=as_of)
    ):
        counts[(acc, issue_kind)] = count
    for family, severities in (("open_tickets", None), ("open_high_tickets", ("high", "critical"))):
        for days in windows.get(family, []):
            query = _built((family, kind), partial(_open_tickets, kind, severities))
            name = f"{family}_{days}d"
            for fact in facts.values():
                fact[name] = 0
            for acc, count in _rows(
                session, query, _bound(account_ids, as_of=as_of, since=as_of - timedelta(days=days))
            ):
                if acc in facts:
                    facts[acc][name] = count
    named = {kind: name for name, kind in ISSUE_COUNTS.items()}
    for (acc, issue_kind), count in counts.items():  # the others are 0 already (`_account_facts`)
        if issue_kind in named and acc in facts:
            facts[acc][named[issue_kind]] = count


def _open_then() -> Any:
    return and_(
        Issue.opened_at <= bindparam("as_of"), or_(Issue.closed_at.is_(None), Issue.closed_at > bindparam("as_of"))
    )


def _open_issues(kind: str) -> Any:
    """Issues open at `:as_of`, counted by account and kind."""
    query = (
        select(Issue.account_id, Issue.kind, func.count()).where(_open_then()).group_by(Issue.account_id, Issue.kind)
    )
    return _scoped(query, Issue.account_id, kind)


def _open_tickets(kind: str, severities: tuple[str, ...] | None) -> Any:
    """Tickets opened from `:since` and open at `:as_of` (of `severities`), counted by account."""
    condition = and_(_open_then(), Issue.kind == "ticket", Issue.opened_at >= bindparam("since"))
    if severities:
        condition = and_(condition, Issue.severity.in_(severities))
    return _scoped(
        select(Issue.account_id, func.count()).where(condition).group_by(Issue.account_id), Issue.account_id, kind
    )


def _reviews(session: Session, facts: dict[int, dict[str, Any]], as_of: datetime, account_ids: Scope) -> None:
    open_reviews, approved, escalations = _built(
        ("reviews", _kind(account_ids)), lambda: _review_queries(_kind(account_ids))
    )
    params = _bound(account_ids, as_of=as_of)
    for (acc,) in _rows(session, open_reviews, params):
        if acc in facts:
            facts[acc]["has_open_review"] = True
    for acc, at in _rows(session, approved, params):
        if acc in facts:
            facts[acc]["days_since_last_review"] = (as_of - at).days
    for acc, count in _rows(session, escalations, _bound(account_ids)):
        if acc in facts:
            facts[acc]["open_escalations"] = count


def _review_queries(kind: str) -> tuple[Any, Any, Any]:
    """The accounts with a review open at `:as_of`, each one's last approval by then, its open escalations."""
    open_reviews = select(Review.account_id).where(Review.state != "closed", Review.created_at <= bindparam("as_of"))
    approved = (
        select(Review.account_id, func.max(ReviewEvent.at))
        .join(ReviewEvent)
        .where(ReviewEvent.event == "approve", ReviewEvent.at <= bindparam("as_of"))
        .group_by(Review.account_id)
    )
    escalations = (
        select(Escalation.account_id, func.count())
        .where(Escalation.status != "resolved")
        .group_by(Escalation.account_id)
    )
    return (
        _scoped(open_reviews, Review.account_id, kind).distinct(),
        _scoped(approved, Review.account_id, kind),
        _scoped(escalations, Escalation.account_id, kind),
    )


KPI_WINDOW_FAMILIES = ("kpi_change_pct", "kpi_avg", "kpi_min")


def _kpi_windows(
    session: Session,
    facts: dict[int, dict[str, Any]],
    as_of: datetime,
    windows: Mapping[str, list[int]],
    account_ids: Scope,
) -> None:
    """`kpi_change_pct|kpi_avg|kpi_min.<kpi>_<N>d` over imported readings, one query per KPI, family and window.

    avg and min: readings observed in [as_of - N days, as_of]. change_pct: the newest reading after as_of - N
    days against the newest one at or before it, in percent of the older one's magnitude (None without both
    readings, or when the older one is 0 and the newer one is not)."""
    for key, days_list in windows.items():
        family, _, kpi = key.partition(".")
        if family not in KPI_WINDOW_FAMILIES:
            continue
        for days in days_list:
            name, start = f"{key}_{days}d", as_of - timedelta(days=days)
            if family == "kpi_change_pct":
                found = _change_pct(session, kpi, as_of, start, account_ids)
            else:
                found = _aggregate(session, family, kpi, as_of, start, account_ids)
            for acc, fact in facts.items():
                value = found.get(acc)
                fact[name] = None if value is None else round(float(value), 2)


def _aggregate(
    session: Session, family: str, kpi: str, as_of: datetime, start: datetime, account_ids: Scope
) -> dict[int, float]:
    """Each account's mean (kpi_avg) or least (kpi_min) reading of `kpi` observed in [start, as_of]."""
    kind = _kind(account_ids)

    def build() -> Any:
        aggregate = func.avg(KpiReading.value) if family == "kpi_avg" else func.min(KpiReading.value)
        query = (
            select(KpiReading.account_id, aggregate)
            .where(
                KpiReading.kpi == bindparam("kpi"),
                KpiReading.observed_at >= bindparam("since"),
                KpiReading.observed_at <= bindparam("as_of"),
            )
            .group_by(KpiReading.account_id)
        )
        return _scoped(query, KpiReading.account_id, kind)

    params = _bound(account_ids, kpi=kpi, since=start, as_of=as_of)
    return {acc: value for acc, value in _rows(session, _built((family, kind), build), params)}


def _newest_readings(
    session: Session, kpi: str, until: datetime, after: datetime | None, account_ids: Scope
) -> dict[int, float]:
    """Each account's newest reading of `kpi` at or before `until` (and after `after`)."""
    kind = _kind(account_ids)

    def build() -> Any:
        rank = func.row_number().over(
            partition_by=KpiReading.account_id, order_by=(KpiReading.observed_at.desc(), KpiReading.id.desc())
        )
        ranked = select(KpiReading.account_id, KpiReading.value, rank.label("rn")).where(
            KpiReading.kpi == bindparam("kpi"), KpiReading.observed_at <= bindparam("until")
        )
        if after is not None:
            ranked = ranked.where(KpiReading.observed_at > bindparam("after"))
        sub = _scoped(ranked, KpiReading.account_id, kind).subquery()
        return select(sub.c.account_id, sub.c.value).where(sub.c.rn == 1)

    params = _bound(account_ids, kpi=kpi, until=until)
    if after is not None:
        params["after"] = after
    query = _built(("newest_readings", kind, after is not None), build)
    return {acc: value for acc, value in _rows(session, query, params)}


def _change_pct(session: Session, kpi: str, as_of: datetime, start: datetime, account_ids: Scope) -> dict[int, float]:
    latest = _newest_readings(session, kpi, as_of, start, account_ids)
    before = _newest_readings(session, kpi, start, None, account_ids)
    changes = {}
    for acc, new in latest.items():
        old = before.get(acc)
        if old is None or (old == 0 and new != 0):
            continue
        changes[acc] = 0.0 if old == 0 else (new - old) / abs(old) * 100
    return changes


def _ticket_windows(
    session: Session,
    facts: dict[int, dict[str, Any]],
    as_of: datetime,
    windows: Mapping[str, list[int]],
    account_ids: Scope,
) -> None:
    """`tickets_<N>d` and `tickets_<severity>_<N>d`: tickets opened in [as_of - N days, as_of], open or closed
    since; one query per window, counted by severity."""
    spans = sorted({days for key, days_list in windows.items() if key.startswith("tickets") for days in days_list})
    kind = _kind(account_ids)
    query = _built(("tickets", kind), lambda: _tickets(kind))
    for days in spans:
        counts: dict[tuple[int, str], int] = {}
        for acc, severity, count in _rows(
            session, query, _bound(account_ids, as_of=as_of, since=as_of - timedelta(days=days))
        ):
            counts[(acc, severity)] = count
        total, each = f"tickets_{days}d", [(severity, f"tickets_{severity}_{days}d") for severity in SEVERITIES]
        for acc, fact in facts.items():
            fact[total] = sum(counts.get((acc, severity), 0) for severity in SEVERITIES)
            for severity, name in each:
                fact[name] = counts.get((acc, severity), 0)


def _tickets(kind: str) -> Any:
    """Tickets opened in [`:since`, `:as_of`], counted by account and severity."""
    query = (
        select(Issue.account_id, Issue.severity, func.count())
        .where(Issue.kind == "ticket", Issue.opened_at >= bindparam("since"), Issue.opened_at <= bindparam("as_of"))
        .group_by(Issue.account_id, Issue.severity)
    )
    return _scoped(query, Issue.account_id, kind)
