"""The audit chain: a database the demo filled verifies; each tampering by SQL is detected and named."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import text

from pulsecheck.cli import cli
from pulsecheck.demo.story import DEMO_NOW, run_demo
from pulsecheck.storage.db import Database
from pulsecheck.workflow.audit import verify_chain


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("demo")
    return run_demo(workdir, DEMO_NOW, lambda _line: None)


@pytest.fixture
def copy(demo_db: Path, tmp_path: Path) -> Iterator[Path]:
    target = tmp_path / "tampered.db"
    with sqlite3.connect(demo_db) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(demo_db, target)
    yield target


def problems(path: Path, workers: int = 1) -> list[str]:
    database = Database(f"sqlite:///{path}")
    try:
        with database.transaction() as session:
            return [str(p) for p in verify_chain(session, workers).problems]
    finally:
        database.dispose()


def sql(path: Path, *statements: str) -> None:
    with sqlite3.connect(path) as conn:
        for statement in statements:
            conn.execute(statement)


def one(path: Path, query: str) -> tuple:
    with sqlite3.connect(path) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None, query
    return row


def test_the_demo_database_verifies_and_every_audited_kind_is_in_the_chain(copy: Path) -> None:
    assert problems(copy) == []
    with sqlite3.connect(copy) as conn:
        kinds = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM audit_chain")}
        events = conn.execute("SELECT count(*) FROM review_events").fetchone()[0]
        chained = conn.execute("SELECT count(*) FROM audit_chain WHERE kind = 'review_event'").fetchone()[0]
    assert {"review_event", "review", "cycle_event", "cycle", "escalation", "model", "ruleset", "user"} <= kinds
    assert chained == events > 0


def test_the_cli_says_ok_and_exits_1_naming_the_first_problem(copy: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["--db", f"sqlite:///{copy}", "audit", "verify"])
    assert good.exit_code == 0 and good.output.startswith("audit chain ok:")
    (review_id,) = one(copy, "SELECT id FROM reviews WHERE manager_signed_by IS NOT NULL")
    sql(copy, f"UPDATE reviews SET baseline_score = baseline_score + 10 WHERE id = {review_id}")
    bad = runner.invoke(cli, ["--db", f"sqlite:///{copy}", "audit", "verify"])
    assert bad.exit_code == 1
    assert f"error: audit chain broken at review {review_id}: differs from its audit chain entry" in bad.output


def _approved(path: Path) -> int:
    return one(path, "SELECT id FROM reviews WHERE manager_signed_by IS NOT NULL ORDER BY id")[0]


def _entry(path: Path, kind: str) -> int:
    return one(path, f"SELECT seq FROM audit_chain WHERE kind = '{kind}' ORDER BY seq LIMIT 1 OFFSET 2")[0]


# Each case: what it does to the database, and the place the first problem must name.
TAMPERINGS: dict[str, Callable[[Path], str]] = {}


def tampering(func: Callable[[Path], str]) -> Callable[[Path], str]:
    TAMPERINGS[func.__name__] = func
    return func


@tampering
def baseline_score_changed(path: Path) -> str:
    review = _approved(path)
    sql(path, f"UPDATE reviews SET baseline_score = 12.5 WHERE id = {review}")
    return f"review {review}: differs"


@tampering
def both_signatures_nulled(path: Path) -> str:
    review = _approved(path)
    sql(
        path,
        "UPDATE reviews SET employee_signed_by = NULL, employee_digest = NULL, manager_signed_by = NULL, "
        f"manager_digest = NULL WHERE id = {review}",
    )
    return f"review {review}: differs"


@tampering
def approver_swapped_in_review_and_event(path: Path) -> str:
    review = _approved(path)
    (event,) = one(path, f"SELECT id FROM review_events WHERE review_id = {review} AND event = 'approve'")
    sql(
        path,
        f"UPDATE reviews SET manager_signed_by = 'diana' WHERE id = {review}",
        f"UPDATE review_events SET actor = 'diana' WHERE id = {event}",
    )
    return f"review_event {event}: differs"  # review_events are checked before reviews: the event names it first


@tampering
def approval_forged_by_inserted_events(path: Path) -> str:
    (review,) = one(path, "SELECT id FROM reviews WHERE state = 'draft' ORDER BY id")
    (last,) = one(path, "SELECT max(id) FROM review_events")
    sql(
        path,
        "INSERT INTO review_events (review_id, event, from_state, to_state, actor, at, cause) VALUES "
        f"({review}, 'submit', 'draft', 'submitted', 'bob', '2026-11-25 10:00:00', 'user')",
        "INSERT INTO review_events (review_id, event, from_state, to_state, actor, at, cause) VALUES "
        f"({review}, 'approve', 'submitted', 'approved', 'maria', '2026-11-25 11:00:00', 'user')",
        f"UPDATE reviews SET state = 'approved', manager_signed_by = 'maria' WHERE id = {review}",
    )
    return f"review_event {last + 1}: not in the audit chain"


@tampering
def review_event_deleted(path: Path) -> str:
    review = _approved(path)
    (event,) = one(path, f"SELECT id FROM review_events WHERE review_id = {review} AND event = 'submit'")
    sql(path, f"DELETE FROM review_events WHERE id = {event}")
    return f"review_event {event}: deleted"


@tampering
def content_rewritten_with_digests_recomputed(path: Path) -> str:
    review = _approved(path)
    sql(
        path,
        f"UPDATE reviews SET goal_summary = 'nothing to see', employee_digest = '{'a' * 64}', "
        f"manager_digest = '{'b' * 64}' WHERE id = {review}",
    )
    return f"review {review}: differs"


@tampering
def entry_content_modified(path: Path) -> str:
    seq = _entry(path, "review_event")
    sql(path, f"UPDATE audit_chain SET content = replace(content, '\"actor\":\"', '\"actor\":\"x') WHERE seq = {seq}")
    return f"audit entry {seq}: modified"


@tampering
def entry_deleted(path: Path) -> str:
    seq = _entry(path, "user")
    sql(path, f"DELETE FROM audit_chain WHERE seq = {seq}")
    return f"audit entry {seq + 1}: entry {seq} is missing"


@tampering
def entries_reordered(path: Path) -> str:
    seq = _entry(path, "review")
    sql(
        path,
        f"UPDATE audit_chain SET seq = -1 WHERE seq = {seq}",
        f"UPDATE audit_chain SET seq = {seq} WHERE seq = {seq + 1}",
        f"UPDATE audit_chain SET seq = {seq + 1} WHERE seq = -1",
    )
    return f"audit entry {seq}: does not follow"


@tampering
def entry_inserted_and_hashes_kept(path: Path) -> str:
    seq = _entry(path, "escalation")
    sql(
        path,
        "UPDATE audit_chain SET seq = seq + 1000000",
        f"UPDATE audit_chain SET seq = seq - 1000000 + 1 WHERE seq > {seq + 1000000}",
        "UPDATE audit_chain SET seq = seq - 1000000 WHERE seq > 1000000",
        "INSERT INTO audit_chain (seq, kind, record_id, content, prev_hash, hash) "
        f"SELECT {seq + 1}, kind, record_id, content, hash, hash FROM audit_chain WHERE seq = {seq}",
    )
    return f"audit entry {seq + 1}: modified"


@tampering
def user_promoted_to_admin(path: Path) -> str:
    (user,) = one(path, "SELECT id FROM users WHERE name = 'bob'")
    sql(path, f"UPDATE users SET roles = 'reviewer,admin' WHERE id = {user}")
    return f"user {user}: differs"


@tampering
def escalation_resolved_behind_the_back(path: Path) -> str:
    (escalation,) = one(path, "SELECT id FROM escalations WHERE status = 'open' ORDER BY id")
    sql(path, f"UPDATE escalations SET status = 'resolved', acknowledged_by = 'maria' WHERE id = {escalation}")
    return f"escalation {escalation}: differs"


@tampering
def sealed_cycle_digest_replaced(path: Path) -> str:
    (cycle,) = one(path, "SELECT id FROM review_cycles WHERE digest IS NOT NULL")
    sql(path, f"UPDATE review_cycles SET digest = '{'c' * 64}' WHERE id = {cycle}")
    return f"cycle {cycle}: differs"


@tampering
def model_approver_rewritten(path: Path) -> str:
    (model,) = one(path, "SELECT id FROM scoring_models WHERE status = 'approved'")
    sql(path, f"UPDATE scoring_models SET approved_by = 'eve' WHERE id = {model}")
    return f"model {model}: differs"


@tampering
def signature_copied_from_another_signoff(path: Path) -> str:
    (seq, key) = one(path, "SELECT seq, signer_key FROM audit_chain WHERE signature IS NOT NULL ORDER BY seq")
    (other,) = one(path, f"SELECT seq FROM audit_chain WHERE signer_key = '{key}' AND seq > {seq} ORDER BY seq")
    sql(path, f"UPDATE audit_chain SET signature = (SELECT signature FROM audit_chain WHERE seq = {other}) "
              f"WHERE seq = {seq}")
    return f"audit entry {seq}: the signature of"


@tampering
def public_key_swapped(path: Path) -> str:
    (seq, key) = one(path, "SELECT seq, signer_key FROM audit_chain WHERE signature IS NOT NULL ORDER BY seq")
    (other,) = one(path, f"SELECT public_key FROM user_keys WHERE fingerprint != '{key}' ORDER BY id")
    sql(path, f"UPDATE user_keys SET public_key = '{other}' WHERE fingerprint = '{key}'")
    return f"audit entry {seq}: the public key registered as {key}"


def test_the_demo_signs_its_signoffs(copy: Path) -> None:
    with sqlite3.connect(copy) as conn:
        signed = {k for (k,) in conn.execute("SELECT DISTINCT kind FROM audit_chain WHERE signature IS NOT NULL")}
    assert {"review_event", "cycle_event", "model", "ruleset"} <= signed


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_each_tampering_is_detected_and_named(copy: Path, name: str) -> None:
    expected = TAMPERINGS[name](copy)
    found = problems(copy)
    assert found, f"{name} went unnoticed"
    assert found[0].startswith(expected), (name, found[:3])


@pytest.mark.parametrize("name", sorted(TAMPERINGS))
def test_two_processes_name_the_same_first_problem(copy: Path, name: str) -> None:
    """A large chain is checked in two shares at once: each tampering is still found, and the same one first."""
    TAMPERINGS[name](copy)
    assert problems(copy, workers=2)[:1] == problems(copy, workers=1)[:1]


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_each_share_boundary_sees_a_deleted_or_swapped_entry(copy: Path, workers: int) -> None:
    """An entry removed or moved right at the cut between two shares breaks the chain there."""
    (last,) = one(copy, "SELECT max(seq) FROM audit_chain")
    cut = last // 2  # the first share's last entry when there are two
    sql(copy, f"DELETE FROM audit_chain WHERE seq = {cut}")
    assert problems(copy, workers)[0].startswith(f"audit entry {cut + 1}: entry {cut} is missing")


def test_an_event_recorded_twice_is_named(copy: Path) -> None:
    """A copy of an event's entry appended with correct hashes (the chain is keyless) is still refused."""
    from pulsecheck.storage.chain import append
    from pulsecheck.storage.entries import BY_KIND
    database = Database(f"sqlite:///{copy}")
    try:
        with database.transaction() as session:
            (row,) = session.execute(text("SELECT * FROM review_events ORDER BY id LIMIT 1")).mappings()
            append(session, [(BY_KIND["review_event"], dict(row))])
        (seq,) = one(copy, "SELECT max(seq) FROM audit_chain")
        for workers in (1, 2):
            with database.transaction() as session:
                report = verify_chain(session, workers)
            assert str(report.problems[0]) == f"audit entry {seq}: review_event {row['id']} recorded twice"
            assert report.entries == seq
    finally:
        database.dispose()


def test_at_least_twelve_tamperings_are_covered() -> None:
    assert len(TAMPERINGS) >= 12


def _verify(path: Path, noun: str, record: int) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{path}", noun, "verify", str(record)])
    return result.exit_code, result.output


def test_review_verify_checks_the_chain_and_the_ssh_signatures(copy: Path) -> None:
    review = _approved(copy)
    assert _verify(copy, "review", review)[0] == 0
    (event,) = one(copy, f"SELECT id FROM review_events WHERE review_id = {review} AND event = 'approve'")
    (seq, signature) = one(copy, f"SELECT seq, signature FROM audit_chain WHERE kind = 'review_event' "
                                 f"AND record_id = {event}")
    sql(copy, f"UPDATE audit_chain SET signature = replace(signature, 'signed-at 2026', 'signed-at 2025') "
              f"WHERE seq = {seq}")
    code, output = _verify(copy, "review", review)
    assert code == 1 and f"FAIL audit entry {seq}: signed at 2025" in output
    sql(copy, f"UPDATE reviews SET baseline_bucket = 'healthy' WHERE id = {review}")
    assert f"FAIL review {review} differs from its audit chain entry" in _verify(copy, "review", review)[1]


def test_cycle_verify_checks_the_chain_and_the_signed_approval(copy: Path) -> None:
    (cycle,) = one(copy, "SELECT id FROM review_cycles WHERE digest IS NOT NULL")
    assert _verify(copy, "cycle", cycle)[0] == 0
    (event,) = one(copy, f"SELECT id FROM cycle_events WHERE cycle_id = {cycle} AND event = 'approve'")
    sql(copy, "UPDATE user_keys SET revoked_at = '2026-01-01 00:00:00.000000', revoked_by = 'eve'")
    code, output = _verify(copy, "cycle", cycle)
    assert code == 1 and "which was not valid then" in output
    sql(copy, f"UPDATE cycle_events SET actor = 'eve' WHERE id = {event}")
    assert f"FAIL cycle_event {event} differs from its audit chain entry" in _verify(copy, "cycle", cycle)[1]
