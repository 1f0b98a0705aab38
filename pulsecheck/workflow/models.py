"""Scoring-model governance: validate a model file, approve it, the approved version and its history, and
`check` a live model against it (a difference is a model_mismatch deviation).

The reads (`approved_row`, `approved_model`, `model_versions`, `model_row`) run on SQLAlchemy Core and take a
connection or a session, so that a read command imports no ORM (issue 17); the mapped classes, the YAML parser and
the deviations are imported by the functions that need them. A stored version's model comes from the data stored
beside its text (`model_of`): no YAML parser either, unless that data is missing or not the approved content."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck.errors import InputError, RefusedError
from pulsecheck.storage.tables import SCORING_MODELS

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row
    from sqlalchemy.orm import Session

    from pulsecheck.scoring.model import ScoringModel
    from pulsecheck.storage.models import ScoringModelVersion, User
    from pulsecheck.yamlfile import Limits

_MODEL = SCORING_MODELS.c


def read_model_file(path: str | Path, limits: Limits | None = None) -> tuple[str, ScoringModel]:
    """The text and parsed model of a file (errors name the file and line), read within `limits` (default: the
    YAML loader's)."""
    from pulsecheck.scoring.schema import parse_model
    from pulsecheck.yamlfile import Limits, read_file

    limits = limits or Limits()
    text = read_file(path, limits)  # bounded: a regular UTF-8 file within the YAML size limit
    return text, parse_model(text, str(path), limits)


def approve_model(
    session: Session, path: str | Path, user: User, now: datetime, limits: Limits | None = None
) -> ScoringModelVersion:
    """Store a model file as the approved version (manager or ops); the previous approved one retires."""
    from pulsecheck.states import permissions
    from pulsecheck.storage.models import ScoringModelVersion

    reason = permissions.refusal("model.approve", permissions.actor(user.name, user.role_set))
    if reason:
        raise RefusedError(reason)
    text, model = read_model_file(path, limits)
    current = approved_row(session)
    if current is not None and current.sha256 == model.digest():
        raise RefusedError(f"model {model.version} is already the approved version (sha256 {current.sha256[:12]})")
    reused = session.scalar(
        select(ScoringModelVersion).where(
            ScoringModelVersion.version == model.version, ScoringModelVersion.sha256 != model.digest()
        )
    )
    if reused is not None:  # snapshots name their version: one label must always mean one content
        raise InputError(
            f"{path}: version {model.version!r} was already approved with other content on "
            f"{reused.approved_at:%Y-%m-%d}: give this model a new version"
        )
    if current is not None:  # through the mapped object: the change is flushed and chained like any other
        retired = session.get(ScoringModelVersion, current.id)
        assert retired is not None  # just read
        retired.status = "retired"
    row = ScoringModelVersion(
        version=model.version,
        content=text,
        sha256=model.digest(),
        status="approved",
        approved_by=user.name,
        approved_at=now,
        model_data=model_data(model, text),
    )
    session.add(row)
    session.flush()
    return row


def approved_row(db: Session | Connection) -> Row[Any] | None:
    """The approved model version row (every column of `scoring_models`), if any."""
    return db.execute(select(SCORING_MODELS).where(_MODEL.status == "approved")).first()


def model_row(db: Session | Connection, model_id: int) -> Row[Any] | None:
    """The model version row `model_id` names (a snapshot's model), None when it is gone."""
    return db.execute(select(SCORING_MODELS).where(_MODEL.id == model_id)).first()


def approved_model(db: Session | Connection) -> tuple[Row[Any], ScoringModel]:
    """The approved model, parsed; refused when none is approved (only an approved model scores)."""
    row = approved_row(db)
    if row is None:
        raise RefusedError("no approved scoring model: run `pulsecheck model approve FILE` first")
    return row, model_of(row, f"approved model {row.version}")


def model_data(model: ScoringModel, text: str) -> str:
    """What `scoring_models.model_data` holds for a model parsed from `text`: the text's sha256 and the model's
    `as_data()`, as compact JSON (migration 0024 writes the same)."""
    return json.dumps({"text": text_digest(text), "model": model.as_data()}, separators=(",", ":"))


def text_digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def model_of(row: Row[Any], source: str) -> ScoringModel:
    """A stored version's model: made from its stored data when that data is of this text (the text's sha256)
    and of the approved content (the digest of the model it makes is the version's `sha256`, which the audit chain
    records); else parsed from its text, which is the record (a version stored before migration 0024, data that
    does not match, or a text changed since: its checks then run on what the text says)."""
    if row.model_data is not None:
        stored = _model_from_data(row.model_data)
        if stored is not None and stored[0] == text_digest(row.content) and stored[1].digest() == row.sha256:
            return stored[1]
    return parsed_model(row.content, source)


@lru_cache(maxsize=8)
def _model_from_data(data: str) -> tuple[str, ScoringModel] | None:
    """The text digest and the model a `model_data` value holds; None when it holds neither."""
    from pulsecheck.scoring.model import ScoringModel

    try:
        stored = json.loads(data)
        return str(stored["text"]), ScoringModel.from_data(stored["model"])
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, RecursionError):
        return None


@lru_cache(maxsize=8)
def parsed_model(content: str, source: str) -> ScoringModel:
    """A stored model's text parsed once per process (YAML with line numbers, validation: milliseconds); the
    model is frozen, the text its key."""
    from pulsecheck.scoring.schema import parse_model

    return parse_model(content, source)


def model_versions(db: Session | Connection) -> list[Row[Any]]:
    """Every stored version, newest first."""
    return list(db.execute(select(SCORING_MODELS).order_by(_MODEL.id.desc())))


def check_model(session: Session, live: ScoringModel, now: datetime) -> list[str]:
    """Differences between a live model and the approved one; they become (or resolve) a model_mismatch."""
    from pulsecheck.scoring.model import diff_models
    from pulsecheck.workflow import deviations as deviation

    row, approved = approved_model(session)
    differences = diff_models(approved, live)
    found: dict[deviation.Key, str] = {}
    if differences:  # one deviation per live content: accepting one mismatch does not accept a later, other one
        found[(None, "model_mismatch", f"model {live.digest()[:12]}")] = "; ".join(differences)
    deviation.sync(session, found, ["model_mismatch"], now)
    return differences
