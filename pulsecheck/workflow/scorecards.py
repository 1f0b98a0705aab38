"""The account scorecard: one snapshot read back with its model (score, bucket, group subscores in tree order,
each KPI's value, weight, contribution and rating, areas of concern and strengths), the success vector from the
score's trend and the history of group subscores. Plain data, for the terminal, JSON and documents alike."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from pulsecheck.errors import RefusedError
from pulsecheck.scoring import trends
from pulsecheck.storage.tables import SCORE_SNAPSHOTS
from pulsecheck.workflow import account_views
from pulsecheck.workflow.model_reading import tree_order

if TYPE_CHECKING:  # a model is parsed (`workflow.models`) only where a scorecard is made: not for showing a review
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.scoring.model import ScoringModel

WINDOW_DAYS = 30  # the success vector's window, the same 30 days as `accounts show`'s direction
VECTOR = {"up": "positive", "flat": "neutral", "down": "negative"}
_SNAP = SCORE_SNAPSHOTS.c
# What a scorecard reads of each snapshot (`SnapshotLike` and the model it was scored with).
_CARD_COLUMNS = (_SNAP.as_of, _SNAP.score, _SNAP.bucket, _SNAP.provisional, _SNAP.groups, _SNAP.components,
                 _SNAP.model_id)


class AccountKey(Protocol):
    """What a scorecard needs of an account a caller already read: a row of `accounts`, or the mapped object."""

    @property
    def id(self) -> int: ...
    @property
    def external_id(self) -> str: ...


def scorecard(
    db: Session | Connection,
    account: str | AccountKey,
    as_of: datetime | None = None,
    history: int = 6,
    window_days: int = WINDOW_DAYS,
    models: ModelCache | None = None,
) -> dict[str, Any]:
    """The scorecard of `account` (its id, or the account a caller already read) from its newest snapshot at or
    before `as_of` (default: the newest one), read on SQLAlchemy Core: the CLI passes a connection, the web app
    and the other workflows their session.

    `models` is the cache a caller building many scorecards passes, so that each model version is parsed once,
    not once per account."""
    found = account_views.find_account(db, account) if isinstance(account, str) else account
    query = select(*_CARD_COLUMNS).where(_SNAP.account_id == found.id)
    if as_of is not None:
        query = query.where(_SNAP.as_of <= as_of)
    snapshots = db.execute(query.order_by(_SNAP.as_of)).all()
    if not snapshots:
        when = f" at or before {as_of:%Y-%m-%d}" if as_of else ""
        raise RefusedError(f"account {found.external_id} has no score snapshot{when} (run `pulsecheck score`)")
    latest = snapshots[-1]
    version, model = (models or ModelCache(db)).get(latest.model_id)
    points = [(s.as_of, s.score) for s in snapshots]
    change = trends.score_change(points, latest.as_of, window_days)
    return {
        "account": account_views.account_summary(db, found.id),
        **snapshot_card(version, model, latest),
        "success_vector": {
            "direction": VECTOR[trends.direction(points, latest.as_of, window_days)],
            "change": change,
            "window_days": window_days,
        },
        "history": [
            {"as_of": s.as_of.isoformat(), "score": s.score, "bucket": s.bucket, "groups": dict(s.groups or {})}
            for s in snapshots[-history:]
        ]
        if history > 0
        else [],
    }


class SnapshotLike(Protocol):
    """What a scorecard reads of a snapshot: a ScoreSnapshot, or a row selecting these columns."""

    @property
    def as_of(self) -> datetime: ...
    @property
    def score(self) -> float | None: ...
    @property
    def bucket(self) -> str | None: ...
    @property
    def provisional(self) -> bool: ...
    @property
    def groups(self) -> dict[str, Any] | None: ...
    @property
    def components(self) -> list[Any]: ...


class StoredSnapshot(SnapshotLike, Protocol):
    """A snapshot with the id of the model that scored it: what `baseline_of` reads."""

    @property
    def model_id(self) -> int: ...


def snapshot_card(version: str | None, model: ScoringModel | None, snapshot: SnapshotLike) -> dict[str, Any]:
    """The scorecard of one snapshot read with its model: as of, model version, score, bucket and its colour,
    group subscores in tree order, each KPI's values, weight, contribution and rating, the areas of concern and
    the strengths. A review stores this as its baseline (the scorecard it was opened on)."""
    components = snapshot.components
    return {
        "as_of": snapshot.as_of.isoformat(),
        "model_version": version,
        "score": snapshot.score,
        "bucket": snapshot.bucket,
        "bucket_color": _bucket_color(model, snapshot.bucket),
        "provisional": bool(snapshot.provisional),
        "groups": _groups(model, snapshot.groups or {}),
        "kpis": _kpis(model, components),
        "concerns": [c["kpi"] for c in components if c.get("rating") == "concern"],
        "strengths": [c["kpi"] for c in components if c.get("rating") == "strength"],
    }


class ModelCache:
    """Scoring models by id, each read and parsed once (a batch of snapshots mostly shares one model)."""

    def __init__(self, db: Session | Connection) -> None:
        self.db = db
        self.known: dict[int, tuple[str | None, ScoringModel | None]] = {}

    def get(self, model_id: int) -> tuple[str | None, ScoringModel | None]:
        """(version, parsed model) of a model row, (None, None) when it is gone."""
        if model_id not in self.known:
            from pulsecheck.workflow.models import model_of, model_row

            row = model_row(self.db, model_id)
            self.known[model_id] = (
                (row.version, model_of(row, f"model {row.version}")) if row is not None else (None, None)
            )
        return self.known[model_id]


def baseline_of(db: Session | Connection, snapshot: StoredSnapshot | None) -> dict[str, Any] | None:
    """The baseline a review opened on `snapshot` carries (its scorecard), None without a snapshot."""
    if snapshot is None:
        return None
    return snapshot_card(*ModelCache(db).get(snapshot.model_id), snapshot)


def _bucket_color(model: ScoringModel | None, bucket: str | None) -> str | None:
    if model is None or bucket is None:
        return None
    return next((b.color for b in model.buckets if b.name == bucket), None)


def _groups(model: ScoringModel | None, subscores: dict[str, Any]) -> list[dict[str, Any]]:
    if model is None or not model.groups:
        return [{"name": n, "label": n, "depth": 0, "weight": None, "subscore": v} for n, v in subscores.items()]
    labels = {g.name: g.label for g in model.groups}
    return [
        {
            "name": name,
            "label": labels[name],
            "depth": depth,
            "weight": model.group_weight(name),
            "subscore": subscores.get(name),
        }
        for name, depth in tree_order(model)
    ]


def _kpis(model: ScoringModel | None, components: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each KPI of a snapshot; a value a snapshot does not hold (one written by other tools) is null."""
    groups = {k.name: k.group for k in model.kpis} if model is not None else {}
    return [
        {
            "kpi": c["kpi"],
            "group": groups.get(c["kpi"]),
            "raw": c.get("raw"),
            "normalized": c.get("normalized"),
            "weight": c.get("weight"),
            "contribution": c.get("contribution"),
            "status": c.get("status"),
            "rating": c.get("rating"),
            "color": model.status_color(c.get("rating")) if model is not None else None,
        }
        for c in components
    ]


def number(value: Any, digits: int = 2) -> str:
    """A scorecard figure as shown: floats to `digits` places, nothing as `-`."""
    if value is None:
        return "-"
    return f"{value:.{digits}f}" if isinstance(value, float) else str(value)


def terminal_lines(data: dict[str, Any]) -> list[str]:
    """The scorecard (as `scorecard` returns it) as terminal lines, for `pulsecheck scorecard ACCOUNT` and the
    demo alike; the caller strips control characters."""
    acc = data["account"]
    vector = data["success_vector"]
    out = [
        f"{acc['id']} {acc['name']}  segment {acc['segment'] or '-'}  ARR {number(acc['arr'])}  "
        f"renewal {acc['renewal_date'] or '-'}  owner {acc['owner'] or '-'}",
        f"score {number(data['score'])} ({data['bucket'] or '-'}){' provisional' if data['provisional'] else ''}"
        f" as of {data['as_of'][:10]}, model {data['model_version']}",
        f"success vector: {vector['direction']} (change {number(vector['change'])} over {vector['window_days']} days)",
    ]
    if data["groups"]:
        out.append("groups:")
        out += [f"  {'  ' * g['depth']}{g['label']} ({g['name']}): {number(g['subscore'])}" for g in data["groups"]]
    out.append(f"  {'kpi':<20} {'raw':>10} {'normalized':>10} {'weight':>6} {'contrib':>8}  rating")
    for k in data["kpis"]:
        out.append(
            f"  {k['kpi']:<20} {number(k['raw']):>10} {number(k['normalized']):>10} {number(k['weight']):>6} "
            f"{number(k['contribution']):>8}  {k['rating'] or k['status']}"
        )
    out.append(f"areas of concern: {', '.join(data['concerns']) or 'none'}")
    out.append(f"strengths: {', '.join(data['strengths']) or 'none'}")
    if data["history"]:
        out.append("history:")
        for h in data["history"]:
            subs = ", ".join(f"{n} {number(v)}" for n, v in h["groups"].items())
            out.append(f"  {h['as_of'][:10]}  {number(h['score']):>6}  {h['bucket'] or '-'}  {subs}")
    return out
