"""Score snapshot rows as the driver takes them, written with one executemany per chunk of accounts.

A snapshot's JSON columns (components, groups) are built as text, the text json.dumps would write byte for
byte, with what repeats across accounts (each KPI's name, statuses, ratings, a feed's times) encoded once:
building a nine-key dict per KPI and encoding it cost more than scoring the account did.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.orm import Session

from pulsecheck.scoring.compute import Component, ScoreResult
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.storage.models import ScoreSnapshot
from pulsecheck.workflow.staging import bulk_insert

SNAPSHOTS = cast(Table, ScoreSnapshot.__table__)
SNAPSHOT_COLUMNS = ("account_id", "as_of", "score", "bucket", "model_id", "components", "provisional", "groups")
MEMO_LIMIT = 10_000  # distinct texts remembered (times, words); beyond it each just costs its encoding


def number(value: Any) -> str:
    """A JSON number (or null) exactly as json.dumps writes it."""
    if value.__class__ is float:
        text = float.__repr__(value)
        return text if text[-1] not in "nf" else json.dumps(value)  # nan and inf: NaN, Infinity
    if value is None:
        return "null"
    if value.__class__ is int:
        return int.__repr__(value)
    return json.dumps(value)


class _Texts:
    """JSON strings of values that repeat across accounts (statuses, ratings, a feed's times), encoded once."""

    def __init__(self) -> None:
        self.memo: dict[Any, str] = {None: "null"}

    def __call__(self, value: str | datetime | None) -> str:
        text = self.memo.get(value)
        if text is None:
            if len(self.memo) > MEMO_LIMIT:
                self.memo = {None: "null"}
            text = json.dumps(value.isoformat() if isinstance(value, datetime) else value)
            self.memo[value] = text
        return text


class SnapshotWriter:
    """Snapshot rows of one model at one as_of as plain tuples (`row`), inserted CHUNK at a time (`write`)."""

    def __init__(self, session: Session, model: ScoringModel, model_id: int, as_of: datetime) -> None:
        self.statement = bulk_insert(session, SNAPSHOTS, SNAPSHOT_COLUMNS)
        names, convert = self.statement.names, dict(zip(self.statement.names, self.statement.converters, strict=True))
        if sorted(names) != sorted(SNAPSHOT_COLUMNS) or convert["account_id"] or convert["bucket"]:
            raise AssertionError(f"score_snapshots columns changed: {names}")  # the rows below would not fit

        def driver(column: str, value: Any) -> Any:
            process = convert[column]
            return value if process is None or value is None else process(value)

        self.as_of, self.model_id = driver("as_of", as_of), driver("model_id", model_id)
        self.flags = {flag: driver("provisional", flag) for flag in (False, True)}
        self.score_type = convert["score"]
        # The JSON columns go as text: SQLite stores it, PostgreSQL casts it to json from an untyped parameter.
        in_names = [SNAPSHOT_COLUMNS.index(name) for name in names]
        order = self.statement.order
        self.named = None if order is not None else names
        self.picks = None if order is None else [in_names[index] for index in order]
        if self.picks == list(range(len(SNAPSHOT_COLUMNS))):
            self.picks = None  # the statement takes the columns in SNAPSHOT_COLUMNS order: the row as built
        self.in_names = in_names
        self.heads = {kpi.name: '{"kpi": ' + json.dumps(kpi.name) + ', "raw": ' for kpi in model.kpis}
        self.texts = _Texts()

    def _head(self, kpi: str) -> str:
        head = self.heads.get(kpi)
        if head is None:
            head = self.heads[kpi] = '{"kpi": ' + json.dumps(kpi) + ', "raw": '
        return head

    def components(self, components: list[Component]) -> str:
        """The components column: each KPI's raw and normalized value, weights, contribution, status, rating."""
        text, parts = self.texts, []
        for c in components:
            parts.append(
                f'{self._head(c.kpi)}{number(c.raw)}, "normalized": {number(c.normalized)}, '
                f'"weight": {number(c.weight)}, "effective_weight": {number(c.effective_weight)}, '
                f'"contribution": {number(c.contribution)}, "status": {text(c.status)}, "rating": {text(c.rating)}, '
                f'"observed_at": {text(c.observed_at)}}}'
            )
        return "[" + ", ".join(parts) + "]"

    def groups(self, groups: dict[str, float | None]) -> str | None:
        """The groups column: each group's subscore; NULL for a flat model."""
        if not groups:
            return None
        return "{" + ", ".join([f"{self.texts(name)}: {number(value)}" for name, value in groups.items()]) + "}"

    def row(self, account_id: int, result: ScoreResult) -> Any:
        """One snapshot row, in the driver's form (a tuple, or a mapping for a driver with named parameters)."""
        score = result.score
        if score is not None and self.score_type is not None:
            score = self.score_type(score)
        values = (account_id, self.as_of, score, result.bucket, self.model_id, self.components(result.components),
                  self.flags[result.provisional], self.groups(result.groups))  # fmt: skip
        if self.named is not None:
            return {name: values[index] for name, index in zip(self.named, self.in_names, strict=True)}
        if self.picks is not None:
            return tuple([values[index] for index in self.picks])
        return values

    def write(self, rows: list[Any]) -> None:
        """Insert `rows` (from `row`) with one executemany."""
        if rows:
            self.statement.connection.exec_driver_sql(self.statement.sql, rows)
