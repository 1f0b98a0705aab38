"""`evaluate --workers N` and `pulsecheck worker`: a run in shards that worker processes claim, evaluate and apply.

A portfolio of 6,000 accounts (4 blocks of 2,000 ids: 4 shards) whose run opens 75 escalations (every 80th account
scores low) and 60 reviews (every 100th renews soon with a middling score), seeded the same way twice: one copy is
evaluated by the single-process `evaluate` (the reference), the other in shards. The databases must end with the
same escalations, reviews, review events, notifications and firings of the done run, ignoring row ids; on
PostgreSQL each shard is processed exactly once by two workers, and a worker killed with -9 in the middle of a
shard leaves it to another that ends the run as if nothing happened.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, text

from pulsecheck.app import authenticated_login, install_hooks
from pulsecheck.config import load_settings
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, ScoreSnapshot, User
from pulsecheck.workflow.leases import pid_alive
from pulsecheck.workflow.models import approve_model
from pulsecheck.workflow.rulesets import activate
from pulsecheck.workflow.users import add_user
from tests.conftest import PG_URL, pg_reachable

pytestmark = pytest.mark.slow  # several minutes on two busy cores: 4 seeded databases, a process per worker
PULSECHECK = str(Path(sys.executable).parent / "pulsecheck")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
ACCOUNTS = 6_000
AT = datetime(2026, 11, 24, 6, 30, tzinfo=UTC)
RULES = """\
version: 1
rules:
  - id: low-score
    when: {score: {lt: 30}}
    then:
      escalate: {severity: high, due_in: 2d}
  - id: renewal-risk
    when:
      all:
        - days_to_renewal: {lte: 45}
        - score: {lt: 60}
    then:
      open_review: {priority: P1, due_in: 7d}
"""
EXPECTED_FIRINGS = len(range(80, ACCOUNTS + 1, 80)) + len(range(1, ACCOUNTS + 1, 100))
CONTENT = {
    "escalations": "SELECT a.external_id, e.rule_id, e.severity, e.priority, e.reason, e.owner, e.level, e.due_at,"
    " e.opened_at, e.status, e.dedupe_key, e.review_id IS NOT NULL FROM escalations e JOIN accounts a"
    " ON a.id = e.account_id",
    "reviews": "SELECT a.external_id, r.state, r.kind, r.reviewer, r.approver, r.priority, r.due_at,"
    " r.baseline_score, r.baseline_bucket FROM reviews r JOIN accounts a ON a.id = r.account_id",
    "review_events": "SELECT a.external_id, v.event, v.from_state, v.to_state, v.actor, v.at, v.cause"
    " FROM review_events v JOIN reviews r ON r.id = v.review_id JOIN accounts a ON a.id = r.account_id",
    "notifications": "SELECT dedupe_key, kind, channel, recipient, subject, body, status, attempts, created_at,"
    " sent_at FROM notifications",
    "done firings": "SELECT a.external_id, f.rule_id, f.fired_at FROM rule_firings f"
    " JOIN accounts a ON a.id = f.account_id JOIN evaluation_runs r ON r.id = f.run_id WHERE r.status = 'done'",
}


def seed(url: str, where: Path) -> None:
    """Users (an admin for the login the CLI authenticates as), the example model, RULES active, and ACCOUNTS
    accounts with one score each."""
    (where / "rules.yaml").write_text(RULES)
    database = Database(url)
    upgrade(database.engine)
    install_hooks(database, load_settings(db=url, env={}))
    with database.transaction() as session:
        add_user(session, authenticated_login(session), ["admin"], AT, login=authenticated_login(session))
        add_user(session, "maria", ["manager"], AT)
        for k in range(20):
            add_user(session, f"csm{k}", ["reviewer"], AT, manager="maria")
        add_user(session, "olga", ["ops"], AT)
        olga = session.scalars(select(User).where(User.name == "olga")).one()
        model_id = approve_model(session, EXAMPLES / "scoring.yaml", olga, AT).id
        activate(session, where / "rules.yaml", olga, AT)
        owners = {name: uid for uid, name in session.execute(select(User.id, User.name))}
    rows, scores = [], []
    for i in range(1, ACCOUNTS + 1):
        score = 20.0 + i % 7 if i % 80 == 0 else 50.0 + i % 9 if i % 100 == 1 else 65.0 + i % 30
        renewal = AT.date() + timedelta(days=30 + i % 10 if i % 100 == 1 else 200 + i % 300)
        rows.append(
            {"id": i, "external_id": f"A{i:06d}", "name": f"Account {i}", "segment": "smb", "tier": "gold",
             "arr": 1000.0 + i, "owner_id": owners[f"csm{i % 20}"], "manager_id": owners["maria"],
             "renewal_date": renewal, "contract_start": date(2024, 1, 1), "stage": "live"}
        )  # fmt: skip
        scores.append(
            {"account_id": i, "as_of": AT - timedelta(days=1), "score": score, "bucket": "neutral",
             "model_id": model_id, "provisional": False, "components": []}
        )  # fmt: skip
    with database.engine.begin() as conn:
        conn.execute(insert(Account), rows)
        conn.execute(insert(ScoreSnapshot), scores)
    database.dispose()


def cli(url: str, where: Path, *args: str) -> subprocess.Popen[bytes]:
    env = dict(os.environ, PULSECHECK_DATABASE_URL=url, PULSECHECK_NOW=AT.isoformat(), PULSECHECK_USER="olga")
    env.pop("PULSECHECK_CONFIG", None)
    log = (where / f"{args[0]}-{time.monotonic_ns()}.log").open("wb")
    return subprocess.Popen([PULSECHECK, *args], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=where)


def finish(url: str, where: Path, *args: str) -> None:
    proc = cli(url, where, *args)
    assert proc.wait(timeout=600) == 0, [p.read_text() for p in where.glob("*.log")]


def query(url: str, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    database = Database(url)
    try:
        with database.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(text(sql), dict(enumerate(params)) if params else {})]
    finally:
        database.dispose()


ESCALATION_ID = re.compile(r"(escalation:|escalation #|ack )(\d+)")
REVIEW_ID = re.compile(r"(review-opened:|review #|review show )(\d+)")


def content(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows of CONTENT; in notifications the ids of escalations and reviews (numbered in the order the
    workers happened to open them) are replaced by the account and rule they are about."""
    found = {name: query(url, sql) for name, sql in CONTENT.items()}
    escalations = dict(query(url, "SELECT e.id, a.external_id || '/' || e.rule_id FROM escalations e JOIN accounts a"
                                  " ON a.id = e.account_id"))  # fmt: skip
    reviews = dict(query(url, "SELECT r.id, a.external_id FROM reviews r JOIN accounts a ON a.id = r.account_id"))

    def named(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        value = ESCALATION_ID.sub(lambda m: m.group(1) + escalations[int(m.group(2))], value)
        return REVIEW_ID.sub(lambda m: m.group(1) + reviews[int(m.group(2))], value)

    found["notifications"] = [tuple(named(value) for value in row) for row in found["notifications"]]
    return {name: sorted(rows, key=repr) for name, rows in found.items()}


def shard_rows(url: str) -> list[tuple[Any, ...]]:
    return query(url, "SELECT shard, status, attempts, accounts, firings FROM evaluation_shards ORDER BY shard")


def assert_same(url: str, reference: dict[str, list[tuple[Any, ...]]]) -> None:
    found = content(url)
    for name, rows in reference.items():
        assert len(found[name]) == len(rows), f"{name}: {len(found[name])} rows, reference {len(rows)}"
        assert found[name] == rows, f"{name} differ from the single-process run"
    assert query(url, "SELECT status, firings FROM evaluation_runs") == [("done", EXPECTED_FIRINGS)]


def reference_of(url: str, where: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The content after a single-process `evaluate` of a fresh seed at `url`."""
    seed(url, where)
    finish(url, where, "evaluate")
    found = content(url)
    assert len(found["done firings"]) == EXPECTED_FIRINGS
    return found


# --- SQLite ---------------------------------------------------------------------------------------------------


def test_evaluate_with_two_workers_on_sqlite_ends_as_the_single_process_run(tmp_path: Path) -> None:
    (tmp_path / "single").mkdir()
    (tmp_path / "sharded").mkdir()
    reference = reference_of(f"sqlite:///{tmp_path / 'single' / 'p.db'}", tmp_path / "single")
    url = f"sqlite:///{tmp_path / 'sharded' / 'p.db'}"
    seed(url, tmp_path / "sharded")
    finish(url, tmp_path / "sharded", "evaluate", "--workers", "2")
    assert_same(url, reference)
    shards = shard_rows(url)
    # blocks of 2,000 ids: 1-1999, 2000-3999, 4000-5999 and 6000, one shard each (2 workers may have 8)
    assert [(shard, status, accounts) for shard, status, _, accounts, _ in shards] == [
        (0, "done", 1999),
        (1, "done", 2000),
        (2, "done", 2000),
        (3, "done", 1),
    ]
    finish(url, tmp_path / "sharded", "evaluate", "--workers", "2")  # the nightly re-run opens nothing new
    assert content(url)["escalations"] == reference["escalations"]


# --- PostgreSQL -----------------------------------------------------------------------------------------------


@pytest.fixture
def pg_pair() -> Iterator[tuple[str, str]]:
    """Two fresh PostgreSQL schemas: the reference and the sharded run."""
    reason = pg_reachable()
    if reason:
        pytest.skip(reason)
    import psycopg

    schemas = [f"t_{uuid.uuid4().hex[:12]}" for _ in range(2)]
    plain = PG_URL.replace("+psycopg", "")
    with psycopg.connect(plain, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"CREATE SCHEMA {schema}")
    yield f"{PG_URL}?options=-csearch_path%3D{schemas[0]}", f"{PG_URL}?options=-csearch_path%3D{schemas[1]}"
    with psycopg.connect(plain, autocommit=True) as conn:
        for schema in schemas:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


def worker_pids(url: str) -> set[int]:
    holders = query(url, "SELECT holder FROM evaluation_shards WHERE holder IS NOT NULL")
    return {int(holder.split("@", 1)[0]) for (holder,) in holders}


@pytest.mark.postgres
def test_two_workers_on_postgresql_process_each_shard_exactly_once(pg_pair: tuple[str, str], tmp_path: Path) -> None:
    reference = reference_of(pg_pair[0], tmp_path)
    seed(pg_pair[1], tmp_path)
    finish(pg_pair[1], tmp_path, "evaluate", "--workers", "2")
    assert_same(pg_pair[1], reference)
    shards = shard_rows(pg_pair[1])
    assert [(status, attempts) for _, status, attempts, _, _ in shards] == [("done", 1)] * len(shards)
    assert len(shards) == 4  # 6,000 accounts in blocks of 2,000 ids (ids 0-1999 ... 6000-7999)
    assert sum(row[3] for row in shards) == ACCOUNTS
    duplicates = query(
        pg_pair[1], "SELECT account_id, rule_id FROM rule_firings GROUP BY account_id, rule_id HAVING count(*) > 1"
    )
    assert duplicates == []


@pytest.mark.postgres
def test_a_worker_killed_mid_shard_leaves_it_to_another_and_the_run_ends_as_one(
    pg_pair: tuple[str, str], tmp_path: Path
) -> None:
    reference = reference_of(pg_pair[0], tmp_path)
    url = pg_pair[1]
    seed(url, tmp_path)
    coordinator = cli(url, tmp_path, "evaluate", "--workers", "2")
    deadline = time.monotonic() + 300
    victim = None
    while victim is None:  # a shard running whose worker has committed some of its firings, not all
        assert coordinator.poll() is None, "the run ended before a worker was caught mid-shard"
        assert time.monotonic() < deadline, "no worker was ever caught mid-shard"
        found = query(
            url,
            "SELECT s.holder FROM evaluation_shards s WHERE s.status = 'running' AND EXISTS (SELECT 1 FROM"
            " rule_firings f WHERE f.run_id = s.run_id AND (f.account_id / s.block) % s.shards = s.shard)",
        )
        if found:
            holder = found[0][0]
            pid = int(holder.split("@", 1)[0])
            # Frozen first, then looked at again: a worker that finished its shard between the look above and the
            # kill would leave nothing to claim again (the race this test once lost in CI).
            os.kill(pid, signal.SIGSTOP)
            try:
                if (holder,) in query(url, "SELECT holder FROM evaluation_shards WHERE status = 'running'"):
                    victim = pid
            finally:
                if victim is None:  # done already (or the look failed): let it go on
                    os.kill(pid, signal.SIGCONT)
        time.sleep(0.02)
    os.kill(victim, signal.SIGKILL)
    while pid_alive(victim):
        time.sleep(0.05)
    assert coordinator.wait(timeout=600) == 0, [p.read_text() for p in tmp_path.glob("*.log")]
    assert_same(url, reference)
    shards = shard_rows(url)
    assert [status for _, status, _, _, _ in shards] == ["done"] * len(shards)
    assert max(attempts for _, _, attempts, _, _ in shards) == 2  # the killed worker's shard, claimed again
    assert victim not in worker_pids(url)  # who finished it is another process


# --- failures, in process (workers as threads) ----------------------------------------------------------------


class ThreadWorker:
    """`work()` of one run in a thread of this process, with the Worker interface of a local process."""

    def __init__(self, database: Database, run_id: int) -> None:
        from pulsecheck.workflow.evaluation import EvaluationSettings
        from pulsecheck.workflow.workers import work

        self.thread = threading.Thread(target=work, args=(database, EvaluationSettings(), run_id), daemon=True)
        self.thread.start()

    def poll(self) -> int | None:
        return None if self.thread.is_alive() else 0

    def kill(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        self.thread.join(timeout)
        return 0


def test_a_shard_failing_every_attempt_fails_the_run_with_its_error(
    rules_portfolio: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pulsecheck.demo.story import DEMO_NOW
    from pulsecheck.workflow import actions
    from pulsecheck.workflow.workers import RunFailed, evaluate_sharded

    def full_disk(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(actions.Batches, "run", full_disk)
    with pytest.raises(RunFailed, match="shard 0: RuntimeError: disk full"):
        evaluate_sharded(rules_portfolio, DEMO_NOW, DEMO_NOW, 2, lambda run: ThreadWorker(rules_portfolio, run))
    url = rules_portfolio.url
    assert query(url, "SELECT status, error FROM evaluation_runs") == [("failed", "shard 0: RuntimeError: disk full")]
    assert shard_rows(url) == [(0, "pending", 3, 0, 0)]  # tried 3 times, given back each time


def test_a_second_sharded_run_opens_nothing_new(rules_portfolio: Database) -> None:
    from pulsecheck.demo.story import DEMO_NOW
    from pulsecheck.workflow.workers import evaluate_sharded
    from tests.integration.conftest import SAMPLE_ESCALATIONS, escalated

    first = evaluate_sharded(rules_portfolio, DEMO_NOW, DEMO_NOW, 2, lambda run: ThreadWorker(rules_portfolio, run))
    assert escalated(rules_portfolio) == SAMPLE_ESCALATIONS
    assert (first.accounts, first.shards) == (12, 1)
    notified = query(rules_portfolio.url, "SELECT count(*) FROM notifications")
    again = evaluate_sharded(rules_portfolio, DEMO_NOW, DEMO_NOW, 2, lambda run: ThreadWorker(rules_portfolio, run))
    assert again.firings == first.firings
    assert query(rules_portfolio.url, "SELECT count(*) FROM escalations") == [(len(SAMPLE_ESCALATIONS),)]
    assert query(rules_portfolio.url, "SELECT count(*) FROM notifications") == notified
    assert query(rules_portfolio.url, "SELECT status FROM evaluation_runs") == [("done",), ("done",)]


def test_the_bench_runs_at_a_tiny_size() -> None:
    bench = Path(__file__).resolve().parents[2] / "bench" / "shards.py"
    done = subprocess.run([sys.executable, str(bench), "300"], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert "floor, plain evaluator" in done.stdout and "2 workers, nightly" in done.stdout


class DeadWorker:
    """A local worker that exits at once with an error (say it cannot reach the database)."""

    def poll(self) -> int | None:
        return 1

    def kill(self) -> None:
        pass

    def wait(self, timeout: float | None = None) -> int:
        return 1


def test_workers_that_keep_dying_at_start_fail_the_run_instead_of_waiting_forever(rules_portfolio: Database) -> None:
    from pulsecheck.demo.story import DEMO_NOW
    from pulsecheck.workflow.workers import RunFailed, evaluate_sharded

    with pytest.raises(RunFailed, match=r"local workers keep exiting \(exit codes \[1\]\)"):
        evaluate_sharded(rules_portfolio, DEMO_NOW, DEMO_NOW, 2, lambda run: DeadWorker())
    assert [status for (status,) in query(rules_portfolio.url, "SELECT status FROM evaluation_runs")] == ["failed"]


@pytest.mark.postgres
def test_workers_refresh_the_statistics_of_the_tables_their_run_grows(
    pg_pair: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """PostgreSQL plans a run's repeated statements from the statistics of the tables it grows; with autovacuum off
    or behind, plans made while they were empty would stay in use. A worker counts the rows it adds across its
    blocks and shards (one block alone adds fewer than the threshold) and analyzes those tables when it passes."""
    from pulsecheck.workflow import workers
    from pulsecheck.workflow.evaluation import EvaluationSettings

    url = pg_pair[1]
    seed(url, tmp_path)
    monkeypatch.setattr(workers, "ANALYZE_AFTER", 1)
    settings = EvaluationSettings(batch_size=ACCOUNTS)  # one batch per block: no block analyzes by itself
    database = Database(url)
    install_hooks(database, load_settings(db=url, env={}))

    class Worker(ThreadWorker):
        def __init__(self, run_id: int) -> None:
            self.thread = threading.Thread(target=workers.work, args=(database, settings, run_id), daemon=True)
            self.thread.start()

    try:
        run = workers.evaluate_sharded(database, AT, AT, 2, Worker)
    finally:
        database.dispose()
    assert (run.shards, run.firings) == (4, EXPECTED_FIRINGS)
    stored = "SELECT count(*), (SELECT reltuples FROM pg_class WHERE oid = 'escalations'::regclass) FROM escalations"
    [(escalations, estimated)] = query(url, stored)
    assert escalations == len(range(80, ACCOUNTS + 1, 80))
    assert 0 < estimated <= escalations  # analyzed during the run, after the first block had escalations
