"""Score snapshot rows as the driver takes them, written with one executemany per chunk of accounts.

A snapshot's JSON columns (components, groups) are built as text, the text json.dumps would write byte for
byte, with what repeats across accounts (each KPI's name, its status, rating and a feed's time) encoded once:
building a nine-key dict per KPI and encoding it cost more than scoring the account did.
"""

from __future__ import annotations

import json
from datetime import datetime
from math import copysign
from typing import Any

from sqlalchemy.orm import Session

from pulsecheck.scoring.compute import Component, ScoreResult
from pulsecheck.scoring.model import ScoringModel
from pulsecheck.storage.tables import SCORE_SNAPSHOTS
from pulsecheck.workflow.staging import bulk_insert

SNAPSHOT_COLUMNS = ("account_id", "as_of", "score", "bucket", "model_id", "components", "provisional", "groups")
MEMO_LIMIT = 10_000  # distinct texts remembered (words, components' tails); beyond it each costs its encoding
FLOAT_MEMO_LIMIT = 50_000  # distinct floats' texts remembered: a few MB at most


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


# Migration 0021's SQLite insert trigger, as sqlite_master keeps it; and what `write` does instead, once per
# executemany: the rows it inserted (ids after the newest before it), in insertion order, the same upsert.
INSERT_TRIGGER = (
    "CREATE TRIGGER latest_snapshots_insert AFTER INSERT ON score_snapshots BEGIN "
    "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
    "VALUES (NEW.account_id, NEW.as_of, NEW.score, NEW.bucket) "
    "ON CONFLICT (account_id) DO UPDATE SET as_of = excluded.as_of, score = excluded.score, bucket = excluded.bucket "
    "WHERE latest_snapshots.as_of <= excluded.as_of; END"
)
TRIGGER_SQL = "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = 'latest_snapshots_insert'"
KEEP_LATEST = (
    "INSERT INTO latest_snapshots (account_id, as_of, score, bucket) "
    "SELECT account_id, as_of, score, bucket FROM score_snapshots WHERE id > ? ORDER BY id "
    "ON CONFLICT (account_id) DO UPDATE SET as_of = excluded.as_of, score = excluded.score, bucket = excluded.bucket "
    "WHERE latest_snapshots.as_of <= excluded.as_of"
)


class _Texts:
    """JSON strings of words that repeat across accounts (statuses, ratings), encoded once."""

    def __init__(self) -> None:
        self.memo: dict[str | None, str] = {None: "null"}

    def __call__(self, value: str | None) -> str:
        text = self.memo.get(value)
        if text is None:
            if len(self.memo) > MEMO_LIMIT:
                self.memo = {None: "null"}
            text = self.memo[value] = json.dumps(value)
        return text


class SnapshotWriter:
    """Snapshot rows of one model at one as_of as plain tuples (`row`), inserted CHUNK at a time (`write`)."""

    def __init__(self, session: Session, model: ScoringModel, model_id: int, as_of: datetime) -> None:
        self.statement = bulk_insert(session, SCORE_SNAPSHOTS, SNAPSHOT_COLUMNS)
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
        self.tails: dict[tuple[Any, ...], str] = {}
        self.keys: dict[str, str] = {}  # a group's name as a JSON key
        # Floats' texts: a KPI's values repeat across accounts (readings are rounded, weights few), and a float's
        # repr costs ten dict look-ups; zero, nan and inf are never kept (see `_number`).
        self.floats: dict[float, str] = {}
        self.parts: dict[tuple[Any, ...], str] = {}  # a component's fields -> its text (see `components`)
        self.set_based: bool | None = None  # latest_snapshots kept by KEEP_LATEST (None: not decided yet)

    def _head(self, kpi: str) -> str:
        head = self.heads.get(kpi)
        if head is None:
            head = self.heads[kpi] = '{"kpi": ' + json.dumps(kpi) + ', "raw": '
        return head

    def _tail(self, status: str, rating: str | None, observed_at: datetime | None) -> str:
        """`"status": ..., "rating": ..., "observed_at": ...}`: the part of a component that repeats across
        accounts (a feed's time), encoded once per distinct value."""
        # The time's zone is part of the key: equal instants in two zones are equal keys but other text.
        key = (status, rating, observed_at, observed_at.tzinfo if observed_at is not None else None)
        tail = self.tails.get(key)
        if tail is None:
            if len(self.tails) > MEMO_LIMIT:
                self.tails = {}
            text = self.texts
            at = "null" if observed_at is None else json.dumps(observed_at.isoformat())
            tail = f'"status": {text(status)}, "rating": {text(rating)}, "observed_at": {at}}}'
            self.tails[key] = tail
        return tail

    def components(self, components: list[Component]) -> str:
        """The components column: each KPI's raw and normalized value, weights, contribution, status, rating.

        A component's whole text is remembered by its fields: accounts share a KPI's value, time and weights
        (readings are rounded, feeds arrive at one time), so most components are one look-up. Only components
        whose numbers are floats (or None) other than -0.0 are remembered or looked up: 1 == 1.0 == True and
        0.0 == -0.0 are equal keys with other texts."""
        parts = []
        memo = self.parts
        for c in components:  # a zero's sign by copysign: 0.0 and -0.0 are equal keys with other texts
            raw, normalized, weight, effective, contribution, at = (
                c.raw, c.normalized, c.weight, c.effective_weight, c.contribution, c.observed_at
            )  # fmt: skip
            if (
                (raw.__class__ is float or raw is None)
                and (normalized.__class__ is float or normalized is None)
                and weight.__class__ is float
                and effective.__class__ is float
                and contribution.__class__ is float
                and (raw or raw is None or copysign(1.0, raw) > 0)
                and (normalized or normalized is None or copysign(1.0, normalized) > 0)
                and (weight or copysign(1.0, weight) > 0)
                and (effective or copysign(1.0, effective) > 0)
                and (contribution or copysign(1.0, contribution) > 0)
            ):
                key = (c.kpi, raw, normalized, weight, effective, contribution, c.status, c.rating, at,
                       at.tzinfo if at is not None else None)  # fmt: skip
                part = memo.get(key)
                if part is None:
                    part = self._component(c)
                    if len(memo) > MEMO_LIMIT:  # a few MB at most; distinct values (a derived KPI's) just miss
                        memo.clear()
                    memo[key] = part
                parts.append(part)
            else:
                parts.append(self._component(c))
        return "[" + ", ".join(parts) + "]"

    def _component(self, c: Component) -> str:
        """One component's text."""
        floats, text = self.floats, self._number
        # A float's text from the memo (class first: 1 == 1.0 == True share a key), else `_number`.
        raw, normalized, weight, effective, contribution = (
            c.raw, c.normalized, c.weight, c.effective_weight, c.contribution
        )  # fmt: skip
        raw_text = (floats.get(raw) if raw.__class__ is float else None) or text(raw)
        normalized_text = (floats.get(normalized) if normalized.__class__ is float else None) or text(normalized)
        weight_text = (floats.get(weight) if weight.__class__ is float else None) or text(weight)
        effective_text = (floats.get(effective) if effective.__class__ is float else None) or text(effective)
        contribution_text = (
            floats.get(contribution) if contribution.__class__ is float else None
        ) or text(contribution)  # fmt: skip
        key = (c.status, c.rating, c.observed_at, c.observed_at.tzinfo if c.observed_at is not None else None)
        tail = self.tails.get(key) or self._tail(c.status, c.rating, c.observed_at)
        head = self.heads.get(c.kpi) or self._head(c.kpi)
        return (
            f'{head}{raw_text}, "normalized": {normalized_text}, "weight": {weight_text}, '
            f'"effective_weight": {effective_text}, "contribution": {contribution_text}, {tail}'
        )

    def _number(self, value: Any) -> str:
        """`number(value)`; a float's text is remembered, except a zero's: 0.0 and -0.0 are one key, two texts."""
        if value.__class__ is not float:
            return number(value)
        text = float.__repr__(value)
        if text[-1] in "nf":  # nan and inf: NaN, Infinity
            return json.dumps(value)
        if value:
            if len(self.floats) > FLOAT_MEMO_LIMIT:
                self.floats.clear()
            self.floats[value] = text
        return text

    def groups(self, groups: dict[str, float | None]) -> str | None:
        """The groups column: each group's subscore; NULL for a flat model."""
        if not groups:
            return None
        keys, float_text = self.keys, float.__repr__
        parts = []
        for name, value in groups.items():
            key = keys.get(name)
            if key is None:
                key = keys[name] = json.dumps(name) + ": "
            text = float_text(value) if value.__class__ is float else number(value)
            parts.append(key + (text if "a" not in text and "f" not in text else number(value)))
        return "{" + ", ".join(parts) + "}"

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
        """Insert `rows` (from `row`) with one executemany; on SQLite, `latest_snapshots` then kept by one
        statement over the rows written rather than by its row trigger (see `_set_based`)."""
        if not rows:
            return
        connection = self.statement.connection
        if self.set_based is None:
            self.set_based = self._set_based()
        if not self.set_based:
            connection.exec_driver_sql(self.statement.sql, rows)
            return
        before = connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM score_snapshots").scalar()
        connection.exec_driver_sql(self.statement.sql, rows)
        connection.exec_driver_sql(KEEP_LATEST, (before,))

    def _set_based(self) -> bool:
        """On SQLite, inside a transaction, when migration 0021's insert trigger is there as it made it: drop it
        until `close` (in this transaction: every other writer, and this one after `close`, still meets it) and
        keep `latest_snapshots` after each executemany by KEEP_LATEST, which upserts the new rows in insertion
        order as the trigger did row by row. The row trigger's call cost 7 us per snapshot, the statement about 1.
        Anywhere else (PostgreSQL's trigger runs once per statement already) the trigger stays."""
        connection = self.statement.connection
        dbapi = connection.connection.dbapi_connection
        if connection.dialect.name != "sqlite" or dbapi is None or not getattr(dbapi, "in_transaction", False):
            return False
        found = connection.exec_driver_sql(TRIGGER_SQL).scalar()
        newest = connection.exec_driver_sql("SELECT coalesce(max(id), 0) FROM score_snapshots").scalar() or 0
        if found != INSERT_TRIGGER or newest >= 2**62:  # new ids must follow the old ones (`id > before`)
            return False
        connection.exec_driver_sql("DROP TRIGGER latest_snapshots_insert")
        return True

    def close(self) -> None:
        """Put back the insert trigger `write` dropped (a no-op otherwise); call it once writing is over, also
        after an error: the same transaction must not commit without it."""
        if self.set_based:
            self.set_based = False
            connection = self.statement.connection
            if connection.exec_driver_sql(TRIGGER_SQL).scalar() is None:  # gone unless a rollback restored it
                connection.exec_driver_sql(INSERT_TRIGGER)
