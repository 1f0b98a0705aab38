"""`outbox list`, `escalations list` and `inbox` read on SQLAlchemy Core (issue 17): run as the installed script,
each loads neither the ORM nor the mapped classes, and its `--json` shows what the test wrote, the filters honoured.
The expected rows are worked out here from the data each test writes, not by the code under test."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from pulsecheck.storage.db import Database
from pulsecheck.storage.models import (
    Account,
    CycleFinding,
    CycleStep,
    Escalation,
    MitigationAction,
    Notification,
    ReviewCycle,
)
from tests.cli.test_cold_start_imports import imported, loaded
from tests.conftest import NOW, Factory, as_json, error, installed, ok, page_items


def _run(db_url: str, tmp_path: Path, *args: str) -> Any:
    """The installed script on the test database, at the tests' fixed clock, outside any settings file."""
    env = {"PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat(), "COLUMNS": "200"}  # tables unwrapped
    return installed(*args, cwd=tmp_path, env=env)


def _on_core(db_url: str, *args: str) -> set[str]:
    """The modules `pulsecheck ARGS` loaded, after checking it loaded no ORM: what it cannot cost and meet issue 17."""
    modules = imported(db_url, *args, PULSECHECK_NOW=NOW.isoformat())
    assert not loaded(modules, "sqlalchemy.orm")
    assert [name for name in ("pulsecheck.storage.models", "pulsecheck.storage.more_models",
                              "pulsecheck.storage.chain", "pulsecheck.storage.bulk") if loaded(modules, name)] == []
    return modules


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


# --- outbox list ---------------------------------------------------------------------------------------------------

# recipient, channel, status, attempts, created (hours before NOW), next try (hours after NOW), last error
OUTBOX = [
    ("bob", "email", "pending", 0, 1, 0, None),
    ("maria", "file", "sent", 1, 2, -2, None),
    ("bob", "webhook", "failed", 5, 3, -1, "HTTP 500: try later"),
    ("olga", "log", "held", 0, 4, -4, None),
    ("bob", "email", "digested", 0, 5, -5, None),
    ("maria", "email", "pending", 2, 6, 0.5, "timeout"),
]


def _outbox(database: Database) -> list[dict[str, Any]]:
    """The rows of OUTBOX written, oldest id first, each as `outbox list --json` should show it."""
    expected = []
    with database.transaction() as session:
        for n, (recipient, channel, status, attempts, created, next_try, last_error) in enumerate(OUTBOX, 1):
            created_at = NOW - timedelta(hours=created)
            next_at = NOW + timedelta(hours=next_try)
            sent_at = created_at if status == "sent" else None
            row = Notification(dedupe_key=f"test:{n}", kind="reminder", channel=channel, recipient=recipient,
                               subject=f"[pulsecheck] notice {n}", body="body", payload={"email": "x@example.com"},
                               status=status, attempts=attempts, created_at=created_at, next_attempt_at=next_at,
                               sent_at=sent_at, last_error=last_error)
            session.add(row)
            session.flush()
            expected.append({
                "id": row.id, "kind": "reminder", "channel": channel, "recipient": recipient, "status": status,
                "attempts": attempts, "created_at": created_at.isoformat(),
                "next_attempt_at": next_at.isoformat() if status == "pending" else None,
                "sent_at": _iso(sent_at), "last_error": last_error, "subject": f"[pulsecheck] notice {n}",
                "dedupe_key": f"test:{n}",
            })
    return expected


def test_outbox_list_reads_the_outbox_on_core(
    db_url: str, database: Database, os_login_admin: str, factory: Factory, tmp_path: Path
) -> None:
    factory.team()
    rows = _outbox(database)
    modules = _on_core(db_url, "outbox", "list", "--json")
    assert "pulsecheck.notifications.outbox_views" in modules  # the command listed
    assert not loaded(modules, "pulsecheck.notifications.dispatch")  # nor the channels the dispatcher loads
    _on_core(db_url, "--as", "bob", "outbox", "list", "--mine", "--failed")  # the text table

    def listed(*args: str) -> list[dict[str, Any]]:
        return page_items(_run(db_url, tmp_path, "outbox", "list", "--json", *args))

    newest = sorted(rows, key=lambda r: -r["id"])
    assert listed() == newest
    assert listed("--failed") == listed("--status", "failed") == [r for r in newest if r["status"] == "failed"]
    assert listed("--status", "pending") == [r for r in newest if r["status"] == "pending"]
    assert listed("--status", "held") == [r for r in newest if r["status"] == "held"]
    bob = [r for r in newest if r["recipient"] == "bob"]
    assert len(bob) == 3 and listed("--recipient", "bob") == bob
    assert page_items(_run(db_url, tmp_path, "--as", "bob", "outbox", "list", "--mine", "--json")) == bob
    assert listed("--recipient", "bob", "--failed") == [r for r in bob if r["status"] == "failed"]
    assert listed("--sort", "oldest") == rows
    by_next_try = sorted(range(len(rows)), key=lambda n: (OUTBOX[n][5], rows[n]["id"]))
    assert listed("--sort", "next-try") == [rows[n] for n in by_next_try]
    page = as_json(_run(db_url, tmp_path, "outbox", "list", "--json", "--sort", "oldest", "--limit", "2",
                        "--offset", "3"))
    assert page == {"total": 6, "offset": 3, "limit": 2, "items": rows[3:5]}
    text = ok(_run(db_url, tmp_path, "outbox", "list", "--failed"))
    assert "HTTP 500: try later" in text and "notice 3" in text and "notice 1" not in text
    assert error(_run(db_url, tmp_path, "outbox", "list", "--status", "bogus"), 2) == (
        "error: --status: expected one of pending, sent, failed, held, digested, got 'bogus'")
    assert error(_run(db_url, tmp_path, "outbox", "list", "--failed", "--status", "sent"), 2) == (
        "error: --failed and --status sent contradict each other")


# --- escalations list ----------------------------------------------------------------------------------------------

# account, rule, severity, priority, priority score, owner, status, opened (days before NOW), due (days after NOW)
ESCALATIONS = [
    ("ACME", "drop", "high", "P1", 0.9, "bob", "open", 3, 1),
    ("ACME", "stale", "low", "P3", None, "bob", "acknowledged", 1, None),
    ("GLOBEX", "drop", "medium", "P2", 0.4, "maria", "open", 2, 3),
    ("GLOBEX", "renewal", "high", "P1", 0.95, "maria", "resolved", 10, -5),
    ("INITECH", "drop", "critical", "P1", None, None, "open", 5, 2),
    ("INITECH", "renewal", "high", "P2", 0.4, "bob", "open", 4, 6),
]


def _escalations(database: Database, factory: Factory) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """The rows of ESCALATIONS written, each as `escalations list --json` should show it; and the accounts' ids."""
    factory.account("GLOBEX", owner="maria", manager="maria")
    factory.account("INITECH", owner="maria", manager="maria")
    expected = []
    with database.transaction() as session:
        ids = {a.external_id: a.id for a in session.scalars(select(Account))}
        for account, rule, severity, priority, score, owner, status, opened, due in ESCALATIONS:
            opened_at = NOW - timedelta(days=opened, hours=opened)
            due_at = None if due is None else NOW + timedelta(days=due)
            row = Escalation(account_id=ids[account], rule_id=rule, severity=severity, priority=priority,
                             priority_score=score, reason=f"{rule} on {account}", owner=owner, level=1,
                             opened_at=opened_at, due_at=due_at, status=status,
                             resolved_at=NOW if status == "resolved" else None,
                             dedupe_key=None if status == "resolved" else f"{ids[account]}:{rule}")
            session.add(row)
            session.flush()
            expected.append({
                "id": row.id, "account": account, "rule": rule, "severity": severity, "priority": priority,
                "priority_score": score, "reason": f"{rule} on {account}", "owner": owner, "level": 1,
                "status": status, "review": None, "opened_at": opened_at.isoformat(), "due_at": _iso(due_at),
                "age_days": opened,
            })
    return expected, ids


def test_escalations_list_reads_the_escalations_on_core(
    db_url: str, database: Database, os_login_admin: str, factory: Factory, tmp_path: Path
) -> None:
    factory.team()
    rows, account_ids = _escalations(database, factory)
    modules = _on_core(db_url, "escalations", "list", "--account", "ACME", "--json")
    assert "pulsecheck.workflow.escalation_views" in modules  # the command listed
    assert not loaded(modules, "pulsecheck.workflow.escalations")  # the services that write: not to read
    _on_core(db_url, "--as", "bob", "escalations", "list", "--mine", "--open")  # the text table

    def listed(*args: str) -> list[dict[str, Any]]:
        return page_items(_run(db_url, tmp_path, "escalations", "list", "--json", *args))

    def where(**wanted: Any) -> list[dict[str, Any]]:
        return [r for r in urgent if all(r[key] in value for key, value in wanted.items())]

    # most urgent first: priority, then the highest priority score (none: after the scored ones), then the oldest
    urgent = sorted(rows, key=lambda r: (r["priority"], -(r["priority_score"] or -1.0), r["opened_at"], r["id"]))
    assert [r["account"] + " " + r["rule"] for r in urgent[:3]] == ["GLOBEX renewal", "ACME drop", "INITECH drop"]
    assert listed() == urgent
    assert listed("--open") == where(status=("open", "acknowledged"))
    assert listed("--status", "resolved") == where(status=("resolved",))
    assert listed("--priority", "P1", "--severity", "high") == where(priority=("P1",), severity=("high",))
    assert listed("--rule", "drop", "--open") == where(rule=("drop",), status=("open", "acknowledged"))
    assert listed("--account", "GLOBEX") == where(account=("GLOBEX",))
    assert listed("--account", str(account_ids["INITECH"])) == where(account=("INITECH",))  # its internal id
    assert listed("--owner", "maria") == where(owner=("maria",))
    bob = where(owner=("bob",))
    assert len(bob) == 3 and page_items(_run(db_url, tmp_path, "--as", "bob", "escalations", "list", "--mine",
                                             "--json")) == bob
    day = NOW.date() + timedelta(days=2)  # due before its start (UTC, the default business time zone)
    before = datetime(day.year, day.month, day.day, tzinfo=NOW.tzinfo)
    due_soon = [r for r in urgent if r["due_at"] and datetime.fromisoformat(r["due_at"]) < before]
    assert len(due_soon) == 2 and listed("--due-before", day.isoformat()) == due_soon
    assert listed("--sort", "due") == sorted(rows, key=lambda r: (r["due_at"] is None, r["due_at"] or "", r["id"]))
    assert listed("--sort", "opened") == sorted(rows, key=lambda r: (r["opened_at"], r["id"]), reverse=True)
    assert listed("--sort", "account") == sorted(rows, key=lambda r: (account_ids[r["account"]], r["id"]))
    page = as_json(_run(db_url, tmp_path, "escalations", "list", "--json", "--limit", "2", "--offset", "1"))
    assert page == {"total": 6, "offset": 1, "limit": 2, "items": urgent[1:3]}
    text = ok(_run(db_url, tmp_path, "escalations", "list", "--account", "GLOBEX"))
    assert "GLOBEX" in text and "ACME" not in text
    assert error(_run(db_url, tmp_path, "escalations", "list", "--account", "NOPE"), 2) == (
        "error: unknown account 'NOPE'")


# --- inbox ---------------------------------------------------------------------------------------------------------


def _desk(database: Database, factory: Factory) -> dict[str, Any]:
    """bob: drafts of ACME and GLOBEX, actions due on the ACME draft, two open escalations (and an acknowledged one),
    a draft cycle with two steps done, a submitted cycle to approve, findings (one carried into a later cycle).
    maria approves the INITECH review bob submitted."""
    factory.account("GLOBEX", owner="bob", manager="maria")
    factory.account("INITECH", owner="bob", manager="maria")
    drafts = [factory.review("ACME"), factory.review("GLOBEX")]
    submitted = factory.review("INITECH")
    factory.complete(submitted)
    factory.fire(submitted, "submit", "bob")
    today = NOW.date()
    with database.transaction() as session:
        ids = {a.external_id: a.id for a in session.scalars(select(Account))}
        for number, due, status in ((2, today - timedelta(days=2), "open"), (3, today + timedelta(days=3),
                                    "in_progress"), (4, today + timedelta(days=20), "open"), (5, today, "done")):
            session.add(MitigationAction(review_id=drafts[0], number=number, risk_number=None,
                                         description=f"action {number}", owner="bob", due_date=due, status=status))
        escalations = []
        for account, priority, status, due in (("GLOBEX", "P2", "open", 1), ("ACME", "P1", "open", 3),
                                               ("INITECH", "P1", "acknowledged", 1)):
            escalation = Escalation(account_id=ids[account], rule_id="drop", severity="high", priority=priority,
                                    reason=f"{account} fell", owner="bob", level=0, opened_at=NOW, status=status,
                                    due_at=NOW + timedelta(days=due), dedupe_key=f"{ids[account]}:drop")
            session.add(escalation)
            escalations.append(escalation)
        cycles = []
        for period, state, approver in (("2026-10", "draft", None), ("2026-11", "submitted", "bob")):
            cycle = ReviewCycle(period=period, segments=[], owner="bob" if state == "draft" else "maria",
                                approver=approver, state=state, as_of=NOW, account_ids=[], created_at=NOW)
            session.add(cycle)
            cycles.append(cycle)
        session.flush()
        for step in ("scope", "data"):
            session.add(CycleStep(cycle_id=cycles[0].id, step=step, done_by="bob", done_at=NOW, evidence=[],
                                  result={}))
        old = CycleFinding(cycle_id=cycles[0].id, kind="data", detail="feed late", owner="bob", due=today)
        undated = CycleFinding(cycle_id=cycles[0].id, kind="process", detail="no date", owner="bob", due=None)
        closed = CycleFinding(cycle_id=cycles[0].id, kind="other", detail="done", owner="bob", status="closed")
        session.add_all([old, undated, closed])
        session.flush()
        carried = CycleFinding(cycle_id=cycles[1].id, kind="data", detail="feed late", owner="bob",
                               due=today - timedelta(days=1), carried_from=old.id)
        session.add(carried)
        session.flush()
        return {"drafts": drafts, "submitted": submitted, "escalations": [e.id for e in escalations],
                "cycles": [c.id for c in cycles], "findings": {"carried": carried.id, "undated": undated.id}}


def test_inbox_reads_each_section_on_core(
    db_url: str, database: Database, os_login_admin: str, factory: Factory, tmp_path: Path
) -> None:
    factory.team()
    desk = _desk(database, factory)
    modules = _on_core(db_url, "--as", "bob", "inbox")
    assert "pulsecheck.workflow.inbox" in modules  # the command read the inbox
    _on_core(db_url, "--as", "maria", "inbox", "--json")

    bob = as_json(_run(db_url, tmp_path, "--as", "bob", "inbox", "--json"))
    assert (bob["user"], bob["as_of"]) == ("bob", NOW.isoformat())
    assert bob["counts"] == {"drafts": 2, "approvals": 0, "escalations": 2, "actions": 2, "cycle_steps": 2,
                             "findings": 2}
    assert bob["total"] == 10
    sections = {s["key"]: s for s in bob["sections"]}
    due = (NOW + timedelta(days=14)).isoformat()  # a new review's due date (the default `[review] due_in`)
    assert sections["drafts"]["items"] == [
        {"review": review, "account": account, "account_name": account.title(), "priority": "P3", "due_at": due,
         "kind": "manual", "reviewer": "bob"}
        for review, account in zip(desk["drafts"], ("ACME", "GLOBEX"), strict=True)
    ]
    globex, acme = desk["escalations"][:2]
    assert [(e["escalation"], e["account"], e["priority"], e["due_at"]) for e in sections["escalations"]["items"]] \
        == [(acme, "ACME", "P1", (NOW + timedelta(days=3)).isoformat()),
            (globex, "GLOBEX", "P2", (NOW + timedelta(days=1)).isoformat())]
    today = NOW.date()
    assert sections["actions"]["items"] == [
        {"review": desk["drafts"][0], "action": 2, "account": "ACME", "description": "action 2",
         "due_date": (today - timedelta(days=2)).isoformat(), "status": "open", "overdue": True},
        {"review": desk["drafts"][0], "action": 3, "account": "ACME", "description": "action 3",
         "due_date": (today + timedelta(days=3)).isoformat(), "status": "in_progress", "overdue": False},
    ]
    draft, submitted = desk["cycles"]
    assert sections["cycle_steps"]["items"] == [
        {"cycle": draft, "period": "2026-10", "state": "draft", "steps_done": 2, "next": "model"},
        {"cycle": submitted, "period": "2026-11", "state": "submitted", "steps_done": 0, "next": "approve"},
    ]
    # the finding carried into the later cycle counts once, as its newest copy; the undated one comes last
    assert sections["findings"]["items"] == [
        {"finding": desk["findings"]["carried"], "cycle": submitted, "kind": "data", "detail": "feed late",
         "due": (today - timedelta(days=1)).isoformat(), "overdue": True},
        {"finding": desk["findings"]["undated"], "cycle": draft, "kind": "process", "detail": "no date", "due": None,
         "overdue": False},
    ]
    # the horizon (30 days: action 4, and the one `complete` gave the submitted review) and the page size
    wide = as_json(_run(db_url, tmp_path, "--as", "bob", "inbox", "--json", "--horizon", "30", "--limit", "1"))
    assert wide["counts"]["actions"] == 4 and wide["total"] == 12
    assert [len(s["items"]) for s in wide["sections"]] == [1, 0, 1, 1, 1, 1]

    maria = as_json(_run(db_url, tmp_path, "--as", "maria", "inbox", "--json"))
    assert maria["total"] == 1
    assert [(s["key"], [i["review"] for i in s["items"]]) for s in maria["sections"] if s["items"]] == [
        ("approvals", [desk["submitted"]])]
    text = ok(_run(db_url, tmp_path, "--as", "bob", "inbox"))
    assert text.splitlines()[0] == (
        "inbox of bob, 2026-11-24 09:00: 2 drafts to fill, 2 escalations to acknowledge, 2 mitigation actions due, "
        "2 cycle work waiting, 2 cycle findings to close")
