"""examples/pulsecheck.toml, the settings file the README points to, is read by every part that has settings."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pulsecheck.config import load_settings
from pulsecheck.notifications.channels import build_channel
from pulsecheck.rules.priority import PriorityMatrix
from pulsecheck.scheduling.sync import ScheduleSettings
from pulsecheck.workflow.cycles.service import CycleSettings
from pulsecheck.workflow.evaluation import EvaluationSettings

SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pulsecheck.toml"


def test_the_sample_settings_are_valid_for_every_part() -> None:
    settings = load_settings(config=str(SAMPLE), env={})
    schedule = ScheduleSettings.from_settings(settings)
    assert [(step.role, step.after) for step in schedule.ladder] == [
        ("owner", timedelta(0)),
        ("manager", timedelta(days=2)),
        ("head_of_cs", timedelta(days=5)),
    ]
    assert {c.segment: c.crontab for c in schedule.cadences} == {"enterprise": "quarterly", "smb": "monthly"}
    assert (schedule.reminder_every, schedule.max_reminders, schedule.routing.channel) == (timedelta(days=2), 3, "file")
    evaluation = EvaluationSettings.from_settings(settings)
    assert evaluation.matrix["critical"] == ["owner", "manager", "head_of_cs"]
    assert PriorityMatrix.from_config(settings.section("priority")).renewal_within_days == 90
    assert CycleSettings.from_settings(settings).renewal_days == 60
    notifications = settings.section("notifications")
    for name in ("file", "email", "webhook"):
        assert build_channel(name, notifications[name], {}) is not None
