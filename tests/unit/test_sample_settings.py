"""The sample settings file (package data, copied by `init --sample`) is valid and read by every part."""

from __future__ import annotations

import re
import tomllib
import types
import typing
from datetime import time, timedelta
from typing import Any

from pydantic import BaseModel

from pulsecheck.config import SettingsFiles, load_settings
from pulsecheck.config.sections import SettingsFile
from pulsecheck.demo import examples_dir
from pulsecheck.notifications.channels import build_channel
from pulsecheck.notifications.dispatch import RetryPolicy
from pulsecheck.scheduling.specs import ScheduleSettings
from pulsecheck.workflow.cycles.service import CycleSettings
from pulsecheck.workflow.evaluation import EvaluationSettings

SAMPLE = examples_dir() / "pulsecheck.toml"


def test_the_sample_settings_are_valid_for_every_part() -> None:
    settings = load_settings(config=str(SAMPLE), env={}, files=SettingsFiles())
    schedule = ScheduleSettings.from_settings(settings)
    assert [(step.role, step.after) for step in schedule.ladder] == [
        ("owner", timedelta(0)),
        ("manager", timedelta(days=2)),
        ("head_of_cs", timedelta(days=5)),
    ]
    assert {c.segment: (c.crontab, c.due_in) for c in schedule.cadences} == {
        "enterprise": ("quarterly", timedelta(days=21)),
        "smb": ("monthly", timedelta(days=14)),  # [review] cadence_due_in
    }
    assert (schedule.reminder_every, schedule.max_reminders, schedule.next_review_at) == (timedelta(days=2), 3, time(9))
    assert (schedule.evaluate, schedule.dispatch_every) == ("0 6 * * *", timedelta(minutes=1))
    assert schedule.routing.channel == "file"
    assert schedule.routing.role_lists == {"head_of_cs": ["diana"]}
    evaluation = EvaluationSettings.from_settings(settings)
    assert evaluation.matrix["critical"] == ["owner", "manager", "head_of_cs"]
    assert (evaluation.workers, evaluation.batch_size, evaluation.priority.renewal_within_days) == (2, 500, 90)
    assert evaluation.priority.base == {"critical": "P1", "high": "P2", "medium": "P3", "low": "P4"}
    cycle = CycleSettings.from_settings(settings)
    assert (cycle.renewal_days, cycle.decline_points, cycle.live_model, str(cycle.tz)) == (
        60, 10.0, "scoring.yaml", "Europe/Berlin",
    )  # fmt: skip
    assert RetryPolicy.from_settings(settings) == RetryPolicy(timedelta(minutes=1), timedelta(hours=1), 5)
    for name in ("log", "file", "email", "webhook"):
        assert build_channel(name, settings.notifications.channel_options(name), {}).name == name


def test_the_sample_documents_every_setting() -> None:
    """Every key of every section appears in the sample, set or commented out (`# key = value`), and the sample
    with those lines uncommented is valid too: the sample is the reference."""
    text = SAMPLE.read_text(encoding="utf-8")
    documented = tomllib.loads(re.sub(r"^#\s*(\w+ = )", r"\1", text, flags=re.MULTILINE))
    SettingsFile.model_validate(documented)
    missing = [".".join(path) for path in _keys(SettingsFile) if not _has(documented, path)]
    assert missing == []


def _keys(model: type[BaseModel], prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    keys = []
    for name, field in model.model_fields.items():
        path = (*prefix, field.alias or name)
        keys.append(path)
        union = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)  # a table `X | None`
        for sub in typing.get_args(field.annotation) if union else (field.annotation,):
            keys += _keys(sub, path) if isinstance(sub, type) and issubclass(sub, BaseModel) else []
    return keys


def _has(table: dict[str, Any], path: tuple[str, ...]) -> bool:
    for part in path:
        if not isinstance(table, dict) or part not in table:
            return False
        table = table[part]
    return True
