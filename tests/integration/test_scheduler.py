"""The scheduler against a real SQLite file: jobs follow the rows, reminders, the ladder, cadence, restarts, DST."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import delete, select, update

from pulsecheck.app import install_hooks
from pulsecheck.config import Settings, load_settings
from pulsecheck.scheduling.runner import JobRun, run_due, runtime, start
from pulsecheck.scheduling.specs import ScheduleSettings
from pulsecheck.scheduling.store import list_jobs
from pulsecheck.storage.db import Database
from pulsecheck.storage.models import Account, Escalation, Notification, Review, ReviewEvent, SchedulerJob
from pulsecheck.workflow import escalations, reviews
from pulsecheck.workflow.users import get_user

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


def settings_for(tmp_path: Path, db_url: str, toml: str = "") -> Settings:
    config = tmp_path / "pulsecheck.toml"
    config.write_text(toml)
    return load_settings(db=db_url, config=str(config), env={"PULSECHECK_NOW": NOW.isoformat()})


@pytest.fixture
def scheduled(tmp_path: Path, db_url: str, database: Database):  # type: ignore[no-untyped-def]
    """Hooks installed on the test database, and a runner: tick(now) runs what is due by `now`."""

    def make(toml: str = '[scheduler]\nevaluate = "off"\n') -> Callable[[datetime], list[JobRun]]:
        settings = settings_for(tmp_path, db_url, toml)
        install_hooks(database, settings)
        rt = runtime(database, settings)

        def tick(now: datetime) -> list[JobRun]:
            start(rt, now)
            return run_due(rt, now)

        tick.settings = settings  # type: ignore[attr-defined]
        return tick

    return make


def jobs(database: Database, tz: ZoneInfo = ZoneInfo("UTC")) -> dict[str, datetime | None]:
    with database.transaction() as session:
        return {job.id: job.next_run_time for job in list_jobs(session, tz)}


def notifications(database: Database, kind: str | None = None) -> list[tuple[str, str]]:
    with database.transaction() as session:
        query = select(Notification.kind, Notification.recipient).order_by(Notification.id)
        if kind:
            query = query.where(Notification.kind == kind)
        return [(k, r) for k, r in session.execute(query)]


def ran(runs: list[JobRun], prefix: str) -> list[JobRun]:
    return [r for r in runs if r.id.startswith(prefix)]


def test_a_review_due_date_is_a_job_that_moves_and_goes_away_with_the_review(scheduled, factory, database):
    scheduled()
    factory.team()
    review_id = factory.review()  # due in 14 days
    assert jobs(database)[f"review-due:{review_id}"] == NOW + timedelta(days=14)
    with database.transaction() as session:
        reviews.set_field(session, review_id, "due_at", "2026-12-01", get_user(session, "maria"), NOW, tz=UTC)
    moved = jobs(database)[f"review-due:{review_id}"]
    assert moved is not None and moved.date() == date(2026, 12, 1)
    factory.fire(review_id, "withdraw", "maria", comment="Account churned")
    assert f"review-due:{review_id}" not in jobs(database)


def test_reminders_repeat_then_escalate_to_the_approver_each_exactly_once(scheduled, factory, database):
    tick = scheduled()
    factory.team()
    review_id = factory.review()
    due = NOW + timedelta(days=14)
    assert ran(tick(due - timedelta(hours=1)), "review-due") == []
    first = ran(tick(due + timedelta(minutes=5)), "review-due")
    assert [r.result for r in first] == [f"review {review_id}: reminder 1/3 to bob"]
    assert ran(tick(due + timedelta(minutes=10)), "review-due") == []  # same moment again: nothing twice
    tick(due + timedelta(days=2, minutes=5))
    # Nothing ran for a week: the missed firings coalesce into one run, which is the escalation.
    late = ran(tick(due + timedelta(days=9)), "review-due")
    assert len(late) == 1 and late[0].missed == 1 and "escalated to maria" in late[0].result
    assert ran(tick(due + timedelta(days=30)), "review-due") == []
    assert notifications(database, "review_due") == [("review_due", "bob"), ("review_due", "bob")]
    assert notifications(database, "review_overdue") == [("review_overdue", "maria")]
    with database.transaction() as session:
        events = session.scalars(select(ReviewEvent).where(ReviewEvent.review_id == review_id)).all()
        assert [(e.event, e.cause) for e in events][-1] == ("escalate", "scheduler")
    assert f"review-due:{review_id}" not in jobs(database)


def test_a_job_moves_on_only_when_its_work_committed(scheduled, factory, database, monkeypatch):
    from pulsecheck.errors import ConflictError
    from pulsecheck.scheduling import jobs as job_functions

    tick = scheduled()
    factory.team()
    review_id = factory.review()
    due = NOW + timedelta(days=14)
    real, calls = job_functions.review_due, []

    def busy_once(*args: object) -> str:
        calls.append(args)
        if len(calls) == 1:  # the database was busy: nothing of the job committed
            raise ConflictError("the database is busy with another command; nothing was saved: try again")
        return real(*args)  # type: ignore[arg-type]

    def failing(*args: object) -> str:
        raise RuntimeError("a bug")

    monkeypatch.setattr(job_functions, "review_due", busy_once)
    runs = ran(tick(due + timedelta(minutes=5)), "review-due")
    assert [(r.ok, r.result.endswith("it runs again")) for r in runs] == [(False, True), (True, False)]
    assert notifications(database, "review_due") == [("review_due", "bob")]
    assert jobs(database)[f"review-due:{review_id}"] == due + timedelta(days=2)
    monkeypatch.setattr(job_functions, "review_due", failing)  # a bug: moved on anyway, not failing every pass
    assert [r.ok for r in ran(tick(due + timedelta(days=2, minutes=5)), "review-due")] == [False]
    assert jobs(database)[f"review-due:{review_id}"] == due + timedelta(days=4)


def test_a_state_change_stops_the_reviewers_reminders_and_starts_the_approvers(scheduled, factory, database):
    tick = scheduled()
    factory.team()
    review_id = factory.review()
    due = NOW + timedelta(days=14)
    tick(due + timedelta(minutes=1))
    factory.complete(review_id)
    factory.fire(review_id, "submit", "bob")
    runs = ran(tick(due + timedelta(minutes=2)), "review-due")
    assert [r.result for r in runs] == [f"review {review_id}: reminder 1/3 to maria"]
    factory.fire(review_id, "approve", "maria", comment="Agreed")
    assert f"review-due:{review_id}" not in jobs(database)
    assert ran(tick(due + timedelta(days=20)), "review-due") == []


def test_jobs_survive_a_restart_and_reconcile_repairs_missing_and_stale_ones(scheduled, factory, db_url, database):
    tick = scheduled()
    factory.team()
    review_id = factory.review()
    before = jobs(database)
    again = Database(db_url)  # a new process's view of the same file
    try:
        assert jobs(again) == before
    finally:
        again.engine.dispose()
    with database.transaction() as session:  # lose one job, and change a due date behind the hooks' back
        session.execute(delete(SchedulerJob).where(SchedulerJob.id == f"review-due:{review_id}"))
        session.execute(
            update(Review).values(due_at=NOW + timedelta(days=3)).execution_options(synchronize_session=False)
        )
    with database.transaction() as session:
        session.execute(delete(SchedulerJob).where(SchedulerJob.id == "dispatch-notifications"))
    rt = runtime(database, tick.settings)  # type: ignore[attr-defined]
    report = start(rt, NOW)
    assert f"review-due:{review_id}" in report.added and "dispatch-notifications" in report.added
    assert jobs(database)[f"review-due:{review_id}"] == NOW + timedelta(days=3)


def test_a_restart_with_nothing_changed_keeps_every_job_as_it_is(scheduled, factory, database):
    # A time zone, a reminder interval and a ladder other than the defaults: the start-up compares the stored
    # jobs with the rows as text made straight from the rows, which must agree with the jobs the hooks wrote.
    tick = scheduled('timezone = "Europe/Berlin"\n[scheduler]\nevaluate = "off"\nreminder_every = "36h"\n'
                     'max_reminders = 2\n[cadence.smb]\nschedule = "weekly"\n')
    factory.team()
    factory.account("S1", owner="bob", manager="maria", segment="smb")
    drafted = factory.review()
    submitted = factory.review("S1")
    factory.complete(submitted)
    factory.fire(submitted, "submit", "bob")
    with database.transaction() as session:  # a due date with seconds and microseconds, as a user might set
        review = session.get(Review, drafted)
        assert review is not None
        review.due_at = NOW + timedelta(days=3, seconds=7, microseconds=250)
    escalation = open_escalation(database)
    rt = runtime(database, tick.settings)  # type: ignore[attr-defined]
    first = start(rt, NOW)  # the jobs the settings alone decide come at the first start; the hooks wrote the rest
    assert (sorted(first.added), first.replaced, first.removed) == (["cadence:smb", "dispatch-notifications"], [], [])
    with database.transaction() as session:
        stored = {row.id: row.job_state for row in session.scalars(select(SchedulerJob))}
    assert set(stored) == {f"review-due:{drafted}", f"review-due:{submitted}", f"escalation-deadline:{escalation}",
                           "cadence:smb", "dispatch-notifications"}
    report = start(rt, NOW)
    assert (report.added, report.replaced, report.removed, report.kept) == ([], [], [], 5)
    with database.transaction() as session:  # not one job rewritten
        assert {row.id: row.job_state for row in session.scalars(select(SchedulerJob))} == stored


LADDER = """
[scheduler]
evaluate = "off"
[escalation]
ladder = [{role = "owner", after = "0d"}, {role = "manager", after = "2d"}, {role = "head_of_cs", after = "5d"}]
"""


def open_escalation(database: Database, rule: str = "drop") -> int:
    with database.transaction() as session:
        account_id = session.scalar(select(Review.account_id).limit(1)) or 1
        return escalations.create(session, account_id, rule, "high", "P1", "score fell", "bob", None, NOW).id


def test_the_ladder_climbs_a_level_at_each_deadline_until_acknowledged(scheduled, factory, database):
    tick = scheduled(LADDER)
    factory.team()
    factory.user("hela", "head_of_cs")
    walking, acked = open_escalation(database, "drop"), open_escalation(database, "renewal")
    assert jobs(database)[f"escalation-deadline:{walking}"] == NOW + timedelta(days=2)
    assert ran(tick(NOW + timedelta(days=1)), "escalation") == []
    level1 = ran(tick(NOW + timedelta(days=2, minutes=1)), f"escalation-deadline:{walking}")
    assert [r.result for r in level1] == [f"escalation {walking}: level 1 (manager) notified maria"]
    with database.transaction() as session:
        escalations.acknowledge(session, acked, get_user(session, "bob"), NOW + timedelta(days=2, hours=1))
        assert session.get(Escalation, walking).due_at == NOW + timedelta(days=5)  # type: ignore[union-attr]
    assert f"escalation-deadline:{acked}" not in jobs(database)
    level2 = ran(tick(NOW + timedelta(days=6)), "escalation")
    assert [r.result for r in level2] == [f"escalation {walking}: level 2 (head_of_cs) notified hela"]
    assert ran(tick(NOW + timedelta(days=30)), "escalation") == []
    with database.transaction() as session:
        levels = {e.id: e.level for e in session.scalars(select(Escalation))}
    assert levels == {walking: 2, acked: 1}
    assert notifications(database, "escalation_level_up") == [
        ("escalation_level_up", "maria"),
        ("escalation_level_up", "maria"),
        ("escalation_level_up", "hela"),
    ]


CADENCE = """
timezone = "Europe/Berlin"
[scheduler]
evaluate = "off"
[cadence.smb]
schedule = "monthly"
due_in = "10d"
"""


def test_a_ladder_step_nobody_holds_goes_to_the_admins_and_says_so(scheduled, factory, database):
    tick = scheduled(LADDER)  # nobody holds head_of_cs here
    factory.team()
    factory.user("ada", "admin")
    escalation_id = open_escalation(database)
    tick(NOW + timedelta(days=2, minutes=1))  # level 1: maria, ACME's manager
    level2 = ran(tick(NOW + timedelta(days=6)), "escalation")
    assert [r.result for r in level2] == [f"escalation {escalation_id}: level 2 (head_of_cs) notified ada"]
    with database.transaction() as session:
        body = session.scalar(select(Notification.body).where(Notification.recipient == "ada"))
    assert "Nobody holds the ladder's role 'head_of_cs' for Acme: this goes to the admins." in (body or "")


def test_cadence_opens_exactly_one_review_per_account_and_closes_the_approved_one(scheduled, factory, database):
    tick = scheduled(CADENCE)
    factory.team()
    for name in ("S1", "S2", "S3"):
        factory.account(name, owner="bob", manager="maria", segment="smb")
    factory.account("S4", segment="smb")  # nobody owns it
    busy = factory.review("S2")  # still a draft: left alone
    done = factory.review("S3")
    factory.complete(done)
    factory.fire(done, "submit", "bob")
    factory.fire(done, "approve", "maria", comment="Agreed")
    first_of_month = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)  # 09:00 in Berlin
    scored_s1 = snapshot_s1(database, NOW)
    tick(NOW)  # the scheduler starts: cadence jobs come from the config
    assert jobs(database, ZoneInfo("Europe/Berlin"))["cadence:smb"] == first_of_month
    with database.transaction() as session:
        s3 = session.scalar(select(Account.id).where(Account.external_id == "S3"))
    assert f"next-review:{s3}" in jobs(database)  # the approved review's next review, until a review is open
    runs = ran(tick(first_of_month + timedelta(minutes=1)), "cadence")
    assert [r.result for r in runs] == ["cadence smb: 2 review(s) opened over 4 account(s); 1 without an owner skipped"]
    assert ran(tick(first_of_month + timedelta(days=3)), "cadence") == []
    with database.transaction() as session:
        rows = session.execute(select(Review.id, Review.state, Review.kind).join(Review.account)).all()
        by_account = {}
        for review in session.scalars(select(Review)):
            by_account.setdefault(review.account.external_id, []).append(review.state)
    assert by_account == {"S1": ["draft"], "S2": ["draft"], "S3": ["closed", "draft"]}
    assert f"next-review:{s3}" not in jobs(database)  # S3's approved review closed with its next one opened
    assert len(rows) == 4 and busy in [r.id for r in rows]
    assert notifications(database, "review_opened") == [("review_opened", "bob"), ("review_opened", "bob")]
    with database.transaction() as session:  # the cadence review carries S1's scorecard (usage 75 of 0-200)
        card = session.scalar(select(Review.baseline).join(Review.account).where(Account.external_id == "S1"))
    assert card is not None and (card["as_of"], card["score"], card["concerns"]) == (scored_s1, 37.5, ["usage"])


def snapshot_s1(database, now):
    """A snapshot of S1 (usage 75 on a 0-200 scale: 37.5, an area of concern); returns its as_of."""
    from pulsecheck.storage.models import ScoreSnapshot, ScoringModelVersion
    from tests.integration.test_review_workflow import BASELINE_MODEL, _component

    with database.transaction() as session:
        model = ScoringModelVersion(version="2026.11", content=BASELINE_MODEL, sha256="0" * 64, status="approved",
                                    approved_by="olga", approved_at=now)
        session.add(model)
        session.flush()
        s1 = session.scalar(select(Account.id).where(Account.external_id == "S1"))
        session.add(ScoreSnapshot(account_id=s1, as_of=now, score=37.5, bucket="unhealthy", model_id=model.id,
                                  components=[_component(75.0)], provisional=False))
    return now.isoformat()


def test_times_hold_on_the_wall_clock_across_a_dst_change(scheduled, factory, database):
    tick = scheduled(CADENCE + '[review]\ncadence_due_in = "10d"\n')
    berlin = ZoneInfo("Europe/Berlin")
    cfg = ScheduleSettings.from_settings(tick.settings)  # type: ignore[attr-defined]
    # Summer time starts on 2027-03-28 in Berlin: a reminder two days after 23:59 is still at 23:59.
    due = datetime(2027, 3, 27, 23, 59, tzinfo=berlin)
    times = cfg.reminder_times(due)
    assert [t.astimezone(berlin).strftime("%m-%d %H:%M") for t in times] == [
        "03-27 23:59",
        "03-29 23:59",
        "03-31 23:59",
        "04-02 23:59",
    ]
    assert times[1].astimezone(UTC) - times[0].astimezone(UTC) == timedelta(
        hours=47
    )  # one hour fewer in that stretch of real time
    # The monthly cadence at 09:00 Berlin is 08:00 UTC in March and 07:00 UTC in April.
    factory.team()
    factory.account("S1", owner="bob", manager="maria", segment="smb")
    tick(datetime(2027, 2, 20, tzinfo=UTC))
    runs = ran(tick(datetime(2027, 3, 1, 8, 1, tzinfo=UTC)), "cadence")
    assert len(runs) == 1
    assert jobs(database, berlin)["cadence:smb"] == datetime(2027, 4, 1, 7, 0, tzinfo=UTC)
    # A next review date falls at 09:00 local time, on either side of the change.
    assert cfg.at_day(date(2027, 3, 29)).astimezone(UTC).hour == 7
    assert cfg.at_day(date(2027, 3, 26)).astimezone(UTC).hour == 8


def test_an_approved_reviews_next_review_date_opens_the_next_review(scheduled, factory, database):
    tick = scheduled()
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)  # next review date: 90 days out
    factory.fire(review_id, "submit", "bob")
    factory.fire(review_id, "approve", "maria", comment="Agreed")
    when = datetime.combine((NOW + timedelta(days=90)).date(), datetime.min.time(), tzinfo=UTC) + timedelta(hours=9)
    assert jobs(database)["next-review:1"] == when
    runs = ran(tick(when + timedelta(minutes=1)), "next-review")
    assert len(runs) == 1 and "opened review" in runs[0].result
    with database.transaction() as session:
        states = [r.state for r in session.scalars(select(Review).order_by(Review.id))]
    assert states == ["closed", "draft"]
    assert "next-review:1" not in jobs(database)


def test_review_events_notify_the_next_person_in_the_same_transaction(scheduled, factory, database):
    scheduled()
    factory.team()
    review_id = factory.review()
    factory.complete(review_id)
    factory.fire(review_id, "submit", "bob")
    factory.fire(review_id, "reject", "maria", comment="Evidence for risk 1 is thin")
    factory.fire(review_id, "submit", "bob")
    factory.fire(review_id, "approve", "maria", comment="Agreed")
    assert notifications(database) == [
        ("review_submitted", "maria"),
        ("review_rejected", "bob"),
        ("review_submitted", "maria"),
        ("review_approved", "bob"),
    ]
    with database.transaction() as session:
        body = session.scalar(select(Notification.body).where(Notification.kind == "review_rejected"))
    assert body is not None and "Evidence for risk 1 is thin" in body


def test_a_refused_transition_leaves_no_job_and_no_notification(scheduled, factory, database):
    scheduled()
    factory.team()
    review_id = factory.review()
    with pytest.raises(Exception, match="submit"):
        factory.fire(review_id, "submit", "bob")  # the form is empty: refused
    assert notifications(database) == []
    assert f"review-due:{review_id}" in jobs(database)


@pytest.mark.postgres
def test_on_postgres_jobs_follow_rows_and_fire_once(tmp_path, pg_url, pg_database, factory):
    settings = settings_for(tmp_path, pg_url, LADDER)
    install_hooks(pg_database, settings)
    pg = type(factory)(pg_database, NOW)  # the same builders, on PostgreSQL
    pg.team()
    pg.user("hela", "head_of_cs")
    review_id = pg.review()
    escalation_id = open_escalation(pg_database)
    assert set(jobs(pg_database)) == {f"review-due:{review_id}", f"escalation-deadline:{escalation_id}"}
    rt = runtime(pg_database, settings)
    start(rt, NOW)
    later = NOW + timedelta(days=15)
    first = [r.result for r in run_due(rt, later) if not r.id.startswith("dispatch")]
    assert sorted(first) == [
        f"escalation {escalation_id}: level 2 (head_of_cs) notified hela",
        f"review {review_id}: reminder 1/3 to bob",
    ]
    assert [r for r in run_due(rt, later) if not r.id.startswith("dispatch")] == []
    assert notifications(pg_database, "review_due") == [("review_due", "bob")]


def test_due_jobs_of_a_kind_run_together_and_one_failing_job_costs_the_others_nothing(scheduled, factory, database,
                                                                                     monkeypatch):
    from pulsecheck.scheduling import jobs as job_functions

    tick = scheduled()
    factory.team()
    for name in ("GLOBEX", "INITECH"):
        factory.account(name, owner="bob", manager="maria")
    ids = [factory.review(name) for name in ("ACME", "GLOBEX", "INITECH")]  # all due at the same moment
    due = NOW + timedelta(days=14)
    real = job_functions.review_due

    def one_fails(review_id: int, *rest: str) -> str:
        if review_id == ids[1]:
            raise RuntimeError("a bug in one job")
        return real(review_id, *rest)

    monkeypatch.setattr(job_functions, "review_due", one_fails)
    runs = ran(tick(due + timedelta(minutes=5)), "review-due")
    # The batch of three rolled back on the failure; each then ran alone: two reminders, one failure, none twice.
    assert sorted((r.id, r.ok) for r in runs) == sorted([(f"review-due:{ids[0]}", True),
                                                         (f"review-due:{ids[1]}", False),
                                                         (f"review-due:{ids[2]}", True)])
    assert notifications(database, "review_due") == [("review_due", "bob"), ("review_due", "bob")]
    assert {jobs(database)[f"review-due:{i}"] for i in ids} == {due + timedelta(days=2)}  # all moved on
    monkeypatch.setattr(job_functions, "review_due", real)
    again = ran(tick(due + timedelta(days=2, minutes=5)), "review-due")  # the next firing: a batch that commits
    assert sorted(r.result for r in again) == sorted(f"review {i}: reminder 2/3 to bob" for i in ids)
    assert len(notifications(database, "review_due")) == 5


def test_overdue_reviews_of_one_batch_each_escalate_once_with_their_content_intact(scheduled, factory, database,
                                                                                  caplog):
    caplog.set_level("INFO", "pulsecheck.scheduler")
    tick = scheduled()
    factory.team()
    for name in ("GLOBEX", "INITECH"):
        factory.account(name, owner="bob", manager="maria")
    ids = [factory.review(name) for name in ("ACME", "GLOBEX", "INITECH")]  # all due at the same moment
    factory.complete(ids[1])  # one with risks and actions, which an escalation reads and must leave as they are
    due = NOW + timedelta(days=14)
    late = ran(tick(due + timedelta(days=9)), "review-due")  # past the last reminder: straight to the escalation
    assert sorted(r.result for r in late) == sorted(
        f"review {i}: overdue after 0 reminder(s), escalated to maria" for i in ids
    )
    assert notifications(database, "review_overdue") == [("review_overdue", "maria")] * 3
    assert not [r for r in caplog.records if "rolled back" in r.getMessage()]  # ran as one batch, which committed
    assert ran(tick(due + timedelta(days=30)), "review-due") == []  # once each
    with database.transaction() as session:
        escalated = session.execute(
            select(ReviewEvent.review_id, ReviewEvent.cause).where(ReviewEvent.event == "escalate")
        ).all()
        assert sorted(escalated) == [(i, "scheduler") for i in ids]
        completed = session.get(Review, ids[1])
        assert completed is not None
        assert [r.description for r in completed.risks] == ["Champion leaving"]
        assert [a.description for a in completed.actions] == ["Build second champion"]
    assert not any(f"review-due:{i}" in jobs(database) for i in ids)


def test_a_review_edited_while_its_reminder_batch_runs_keeps_the_edit_and_is_reminded_once(scheduled, factory, database,
                                                                                         monkeypatch):
    from pulsecheck.scheduling import jobs as job_functions

    tick = scheduled()
    factory.team()
    for name in ("GLOBEX", "INITECH"):
        factory.account(name, owner="bob", manager="maria")
    ids = [factory.review(name) for name in ("ACME", "GLOBEX", "INITECH")]  # all due at the same moment
    due = NOW + timedelta(days=14)
    real = job_functions.prefetch
    edited: list[int] = []
    with database.transaction() as session:
        before = {r.id: r.version_id for r in session.scalars(select(Review))}

    def edit_after_loading(*args):  # type: ignore[no-untyped-def]
        rows = real(*args)
        if not edited:  # a user's edit commits after the batch loaded the reviews, before it writes
            with database.engine.begin() as conn:
                conn.execute(update(Review).where(Review.id == ids[1])
                             .values(goal_summary="edited", version_id=Review.version_id + 1))
            edited.append(ids[1])
        return rows

    monkeypatch.setattr(job_functions, "prefetch", edit_after_loading)
    runs = ran(tick(due + timedelta(minutes=5)), "review-due")
    # The batch's version check saw the edit: it rolled back whole, and each job ran again alone.
    assert sorted(r.result for r in runs) == sorted(f"review {i}: reminder 1/3 to bob" for i in ids)
    assert len(notifications(database, "review_due")) == 3
    with database.transaction() as session:
        stored = {r.id: (r.reminders_sent, r.version_id, r.goal_summary) for r in session.scalars(select(Review))}
    # each reminder counted once and bumped its review's version once; the edit kept, with its own bump
    assert stored == {ids[0]: (1, before[ids[0]] + 1, None), ids[1]: (1, before[ids[1]] + 2, "edited"),
                      ids[2]: (1, before[ids[2]] + 1, None)}
