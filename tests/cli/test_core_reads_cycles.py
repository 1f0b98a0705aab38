"""`keys list`, `tokens list`, `cycle list`, `cycle show` and `deviations list` read on SQLAlchemy Core (issue 17):
run as a user runs them, each loads neither the ORM nor the mapped classes, and prints what the rows written here
hold, filters honoured. The rows are written with plain Core inserts and the expected output is built from them
here, not by the code under test."""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from pulsecheck.storage.db import Database
from pulsecheck.storage.more_tables import (
    API_TOKENS,
    CYCLE_DECISIONS,
    CYCLE_EVENTS,
    CYCLE_FINDINGS,
    CYCLE_STEPS,
    DEVIATIONS,
    REVIEW_CYCLES,
    USER_KEYS,
)
from pulsecheck.storage.tables import ACCOUNTS, ATTACHMENT_LINKS, ATTACHMENTS, RULESETS, SCORING_MODELS, USERS
from pulsecheck.workflow import cycles
from tests.cli.test_cold_start_imports import PULSECHECK, imported, loaded
from tests.conftest import NOW, Factory

STEPS = ["scope", "data", "model", "trends", "classify", "escalate", "document"]  # the SOP's order (README)
ORM = ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.more_models", "pulsecheck.storage.chain",
       "pulsecheck.storage.bulk")


def cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """`pulsecheck ARGS` as the OS login (an admin) with the tests' fixed clock."""
    env = {**os.environ, "PULSECHECK_DATABASE_URL": db_url, "PULSECHECK_NOW": NOW.isoformat()}
    for name in ("PULSECHECK_USER", "PULSECHECK_CONFIG"):
        env.pop(name, None)
    return subprocess.run([str(PULSECHECK), *args], capture_output=True, text=True, env=env, timeout=120)


def listed(db_url: str, *args: str) -> dict[str, Any]:
    """The `--json` page of a list command."""
    done = cli(db_url, *args, "--json")
    assert done.returncode == 0, done.stderr
    page: dict[str, Any] = json.loads(done.stdout)
    return page


def items(db_url: str, *args: str) -> list[Any]:
    return list(listed(db_url, *args)["items"])


def refused(db_url: str, *args: str) -> str:
    """The error line of a command that failed (the exit status is checked by the caller)."""
    done = cli(db_url, *args)
    assert done.returncode != 0 and done.stdout == "", (done.returncode, done.stdout)
    return done.stderr.strip()


def core_only(db_url: str, *args: str) -> None:
    """The command succeeds having loaded no ORM, no mapped class, no audit chain and no bulk writer."""
    modules = imported(db_url, *args, PULSECHECK_NOW=NOW.isoformat())
    assert "pulsecheck.storage.tables" in modules  # the log is read (the command ran)
    assert [name for name in ORM if loaded(modules, name)] == []


def write(database: Database, table: Any, *rows: dict[str, Any]) -> list[int]:
    """Insert `rows` into `table` (plain Core) and return their ids."""
    ids = []
    with database.engine.begin() as conn:
        for row in rows:
            key = conn.execute(insert(table).values(**row)).inserted_primary_key
            assert key is not None
            ids.append(key[0])
    return ids


def user_ids(database: Database) -> dict[str, int]:
    with database.engine.connect() as conn:
        return {name: pk for pk, name in conn.execute(select(USERS.c.id, USERS.c.name))}


def iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


# --- keys list ----------------------------------------------------------------------------------------------------


def test_keys_list(db_url: str, database: Database, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    ids = user_ids(database)
    added = [NOW - timedelta(days=d) for d in (3, 2, 1)]
    keys: list[dict[str, Any]] = [
        {"user_id": ids["bob"], "fingerprint": "SHA256:bob1", "public_key": "ssh-ed25519 AAAAb1 bob@laptop",
         "added_by": "bob", "added_at": added[0], "revoked_by": os_login_admin, "revoked_at": added[2]},
        {"user_id": ids["maria"], "fingerprint": "SHA256:maria1", "public_key": "ssh-rsa AAAAm1",
         "added_by": os_login_admin, "added_at": added[1]},
        {"user_id": ids["bob"], "fingerprint": "SHA256:bob2", "public_key": "ecdsa-sha2-nistp256 AAAAb2 bob on yubi",
         "added_by": "bob", "added_at": added[2]},
    ]
    key_ids = write(database, USER_KEYS, *keys)
    owner = {key_ids[0]: "bob", key_ids[1]: "maria", key_ids[2]: "bob"}
    comment = {key_ids[0]: "bob@laptop", key_ids[1]: None, key_ids[2]: "bob on yubi"}
    expected = {
        pk: {"id": pk, "user": owner[pk], "fingerprint": k["fingerprint"], "type": k["public_key"].split()[0],
             "comment": comment[pk], "added_by": k["added_by"], "added_at": iso(k["added_at"]),
             "revoked_by": k.get("revoked_by"), "revoked_at": iso(k.get("revoked_at"))}
        for pk, k in zip(key_ids, keys, strict=True)
    }
    core_only(db_url, "keys", "list")
    core_only(db_url, "keys", "list", "--user", "bob", "--json")
    by_user = sorted(key_ids, key=lambda pk: (owner[pk], pk))
    assert listed(db_url, "keys", "list") == {"total": 3, "offset": 0, "limit": None,
                                              "items": [expected[pk] for pk in by_user]}
    assert items(db_url, "keys", "list", "--sort", "added") == [expected[pk] for pk in sorted(key_ids)]
    assert items(db_url, "keys", "list", "--user", "bob") == [expected[key_ids[0]], expected[key_ids[2]]]
    assert items(db_url, "--as", "maria", "keys", "list", "--mine") == [expected[key_ids[1]]]
    assert items(db_url, "keys", "list", "--user", "olga") == []
    page = listed(db_url, "keys", "list", "--limit", "1", "--offset", "1")
    assert (page["total"], page["items"]) == (3, [expected[by_user[1]]])
    assert refused(db_url, "keys", "list", "--user", "nobody") == "error: --user: unknown user 'nobody'"


# --- tokens list --------------------------------------------------------------------------------------------------


def test_tokens_list(db_url: str, database: Database, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    ids = user_ids(database)
    created = NOW - timedelta(days=10)
    tokens: list[dict[str, Any]] = [
        {"user_id": ids["bob"], "name": "laptop", "scope": "write", "token_hash": "a" * 64, "created_by": "bob",
         "created_at": created, "expires_at": NOW + timedelta(days=80)},
        {"user_id": ids["bob"], "name": "old", "scope": "read", "token_hash": "b" * 64, "created_by": "bob",
         "created_at": created, "expires_at": NOW - timedelta(seconds=1)},
        {"user_id": ids["maria"], "name": "ci", "scope": "read", "token_hash": "c" * 64, "created_by": os_login_admin,
         "created_at": created, "revoked_by": "maria", "revoked_at": NOW - timedelta(days=1)},
        {"user_id": ids[os_login_admin], "name": "mine", "scope": "read", "token_hash": "d" * 64,
         "created_by": os_login_admin, "created_at": created},
    ]
    token_ids = write(database, API_TOKENS, *tokens)
    owners = ["bob", "bob", "maria", os_login_admin]
    states = ["active", "expired", "revoked", "active"]
    expected = [
        {"id": pk, "user": owner, "name": t["name"], "scope": t["scope"], "created_by": t["created_by"],
         "created_at": iso(t["created_at"]), "expires_at": iso(t.get("expires_at")), "revoked_by": t.get("revoked_by"),
         "revoked_at": iso(t.get("revoked_at")), "state": state}
        for pk, t, owner, state in zip(token_ids, tokens, owners, states, strict=True)
    ]
    core_only(db_url, "tokens", "list")
    core_only(db_url, "--as", "bob", "tokens", "list", "--json")

    def shown(*args: str) -> Any:
        done = cli(db_url, *args, "tokens", "list", "--json")
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert shown() == expected  # an admin sees everyone's
    assert shown("--as", "bob") == expected[:2]  # anyone else their own
    assert shown("--as", "olga") == []
    done = cli(db_url, "tokens", "list", "--user", "maria", "--json")
    assert json.loads(done.stdout) == expected[2:3]
    done = cli(db_url, "--as", "bob", "tokens", "list", "--user", "bob", "--json")
    assert json.loads(done.stdout) == expected[:2]
    done = cli(db_url, "--as", "bob", "tokens", "list", "--user", "maria")
    assert (done.returncode, done.stderr) == (1, "error: bob cannot manage the API tokens of maria (their own, or an "
                                                  "admin)\n")
    assert refused(db_url, "tokens", "list", "--user", "nobody") == "error: --user: unknown user 'nobody'"


# --- cycles -------------------------------------------------------------------------------------------------------


def seed_cycles(database: Database, factory: Factory) -> dict[str, Any]:
    """Three cycles: a draft of bob's with two steps, findings, a decision and audit rows; a submitted one of
    maria's; an approved one of bob's, sealed, with a model and a ruleset. Returns what was written."""
    factory.team()
    factory.account("GLOBEX", owner="maria", segment="smb")
    with database.engine.connect() as conn:
        acme, globex = (conn.scalar(select(ACCOUNTS.c.id).where(ACCOUNTS.c.external_id == ext))
                        for ext in ("ACME", "GLOBEX"))
    model_id, = write(database, SCORING_MODELS, {"version": "2026.11", "content": "{}", "sha256": "m" * 64,
                                                 "status": "approved"})
    ruleset_id, = write(database, RULESETS, {"name": "rules.yaml", "sha256": "r" * 64, "content": "rules: []",
                                             "activated_by": "olga", "activated_at": NOW, "active": True})
    archive = {"content": {"steps": [{"step": "scope", "done_by": "bob", "done_at": "2026-11-02T09:00:00+00:00",
                                      "note": "all in", "evidence": ["https://wiki.example.com/q4"],
                                      "result": {"accounts": 2}}]},
               "accounts": []}
    base = {"created_at": NOW - timedelta(days=30), "version_id": 1, "approver": None, "digest": None}
    rows = [
        base | {"period": "2026-11", "segments": [], "owner": "bob", "state": "draft", "as_of": NOW,
                "account_ids": [acme, globex]},
        base | {"period": "2026-10", "segments": ["smb"], "owner": "maria", "state": "submitted",
                "as_of": NOW - timedelta(days=24), "account_ids": [globex]},
        base | {"period": "2026-Q3", "segments": ["enterprise"], "owner": "bob", "approver": "maria",
                "state": "approved", "as_of": NOW - timedelta(days=55), "account_ids": [acme], "digest": "d" * 64,
                "sealed": archive, "model_id": model_id, "ruleset_id": ruleset_id},
    ]
    draft, submitted, approved = write(database, REVIEW_CYCLES, *rows)
    steps = [
        {"cycle_id": draft, "step": "scope", "done_by": "bob", "done_at": NOW - timedelta(hours=5), "note": None,
         "evidence": [], "result": {"accounts": 2}},
        {"cycle_id": draft, "step": "data", "done_by": "maria", "done_at": NOW - timedelta(hours=4),
         "note": "feeds ok", "evidence": ["https://wiki.example.com/data"], "result": {"open": {"stale": 1}}},
        {"cycle_id": approved, "step": "scope", "done_by": "bob", "done_at": NOW - timedelta(days=20),
         "note": "live, not archived", "evidence": [], "result": {}},
    ]
    step_ids = write(database, CYCLE_STEPS, *steps)
    write(database, ATTACHMENTS, {"sha256": "e" * 64, "size": 3, "content": b"abc", "stored_at": NOW})
    write(database, ATTACHMENT_LINKS, {"record_kind": "cycle_step", "record_id": step_ids[1], "number": 1,
                                       "sha256": "e" * 64, "filename": "feeds.csv", "note": "export",
                                       "added_by": "maria", "added_at": NOW})
    origin, = write(database, CYCLE_FINDINGS, {"cycle_id": submitted, "kind": "data", "detail": "stale feed",
                                               "corrective_action": "fix it", "owner": "olga", "status": "open"})
    findings = [
        {"cycle_id": draft, "kind": "process", "detail": "no ruleset", "status": "open"},
        {"cycle_id": draft, "kind": "data", "detail": "stale feed", "corrective_action": "fix it", "owner": "olga",
         "due": date(2026, 12, 15), "status": "open", "carried_from": origin},
        {"cycle_id": draft, "kind": "other", "detail": "typo", "status": "closed", "close_note": "fixed"},
    ]
    finding_ids = write(database, CYCLE_FINDINGS, *findings)
    decision = {"cycle_id": draft, "account_id": globex, "decision": "monitor", "owner": "maria",
                "reason": "renewal call booked", "decided_at": NOW - timedelta(hours=3)}
    write(database, CYCLE_DECISIONS, decision)
    events = [
        {"cycle_id": draft, "event": "start", "from_state": None, "to_state": "draft", "actor": "bob",
         "comment": "12 accounts", "at": NOW - timedelta(hours=6)},
        {"cycle_id": draft, "event": "step", "from_state": "draft", "to_state": "draft", "actor": "bob",
         "comment": None, "at": NOW - timedelta(hours=5)},
    ]
    event_ids = write(database, CYCLE_EVENTS, *events)
    return {"ids": (draft, submitted, approved), "rows": rows, "steps": steps, "origin": origin,
            "findings": list(zip(finding_ids, findings, strict=True)), "decision": decision,
            "events": list(zip(event_ids, events, strict=True)), "model_id": model_id}


def summary(pk: int, row: dict[str, Any], done: list[str], open_findings: int) -> dict[str, Any]:
    """The `cycle list` entry of the cycle `row` with the steps `done` and that many open findings."""
    return {"id": pk, "period": row["period"], "segments": row["segments"], "owner": row["owner"],
            "approver": row["approver"], "state": row["state"], "as_of": row["as_of"].isoformat(),
            "accounts": len(row["account_ids"]), "steps_done": len(done),
            "next_step": next((s for s in STEPS if s not in done), None), "open_findings": open_findings,
            "sealed": row["digest"] is not None}


def test_cycle_list(db_url: str, database: Database, os_login_admin: str, factory: Factory) -> None:
    seeded = seed_cycles(database, factory)
    (draft, submitted, approved), rows = seeded["ids"], seeded["rows"]
    expected = {
        draft: summary(draft, rows[0], ["scope", "data"], 2),
        submitted: summary(submitted, rows[1], [], 1),
        approved: summary(approved, rows[2], ["scope"], 0),
    }
    core_only(db_url, "cycle", "list")
    core_only(db_url, "--as", "bob", "cycle", "list", "--mine", "--json")
    newest = sorted(expected, reverse=True)
    assert listed(db_url, "cycle", "list") == {"total": 3, "offset": 0, "limit": None,
                                               "items": [expected[pk] for pk in newest]}
    assert items(db_url, "cycle", "list", "--sort", "oldest") == [expected[pk] for pk in sorted(expected)]
    by_period = sorted(expected, key=lambda pk: (expected[pk]["period"], pk))
    assert items(db_url, "cycle", "list", "--sort", "period") == [expected[pk] for pk in by_period]
    assert items(db_url, "cycle", "list", "--state", "submitted") == [expected[submitted]]
    assert items(db_url, "cycle", "list", "--owner", "bob") == [expected[approved], expected[draft]]
    assert items(db_url, "--as", "maria", "cycle", "list", "--mine") == [expected[submitted]]
    assert items(db_url, "cycle", "list", "--state", "draft", "--owner", "maria") == []
    page = listed(db_url, "cycle", "list", "--limit", "1", "--offset", "2")
    assert (page["total"], page["items"]) == (3, [expected[newest[2]]])


def test_cycle_show(db_url: str, database: Database, os_login_admin: str, factory: Factory) -> None:
    seeded = seed_cycles(database, factory)
    (draft, _submitted, approved), rows = seeded["ids"], seeded["rows"]
    core_only(db_url, "cycle", "show", str(draft))
    core_only(db_url, "cycle", "show", str(approved), "--json")
    done = cli(db_url, "cycle", "show", str(draft), "--json")
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert {key: shown[key] for key in summary(draft, rows[0], [], 0)} == summary(draft, rows[0], ["scope", "data"], 2)
    assert (shown["period_start"], shown["period_end"]) == ("2026-11-01", "2026-11-30")
    assert shown["created_at"] == rows[0]["created_at"].isoformat() and shown["digest"] is None
    assert shown["model"] is None and shown["ruleset"] is None
    scope, data = seeded["steps"][:2]
    assert [s["step"] for s in shown["steps"]] == STEPS
    assert [s["done"] for s in shown["steps"]] == [True, True, False, False, False, False, False]
    assert shown["steps"][1] == {
        "step": "data", "done": True, "done_by": "maria", "done_at": data["done_at"].isoformat(), "note": "feeds ok",
        "evidence": data["evidence"], "result": data["result"],
        "attachments": [{"number": 1, "filename": "feeds.csv", "sha256": "e" * 64, "note": "export"}],
    }
    assert (shown["steps"][0]["attachments"], shown["steps"][0]["result"]) == ([], scope["result"])
    assert shown["steps"][2] == {"step": "model", "done": False, "done_by": None, "done_at": None, "note": None,
                                 "evidence": [], "attachments": [], "result": None}
    found = shown["findings"]
    assert [f["id"] for f in found] == [pk for pk, _ in seeded["findings"]]
    for f, (_pk, row) in zip(found, seeded["findings"], strict=True):
        assert {k: f[k] for k in ("kind", "detail", "status")} == {k: row[k] for k in ("kind", "detail", "status")}
        assert (f["corrective_action"], f["owner"], f["close_note"]) == (
            row.get("corrective_action"), row.get("owner"), row.get("close_note"))
        assert len(f["version"]) == 16 and int(f["version"], 16) >= 0
    assert found[1]["due"] == "2026-12-15" and found[0]["due"] is None
    assert found[1]["carried_from"] == {"cycle": seeded["ids"][1], "finding": seeded["origin"]}
    assert found[0]["carried_from"] is None
    decision = seeded["decision"]
    assert shown["decisions"] == [{"account": "GLOBEX", "decision": "monitor", "owner": "maria",
                                   "reason": decision["reason"], "decided_at": decision["decided_at"].isoformat()}]
    assert shown["history"] == [
        {"id": pk, "event": e["event"], "from": e["from_state"], "to": e["to_state"], "actor": e["actor"],
         "comment": e["comment"], "at": e["at"].isoformat()}
        for pk, e in seeded["events"]
    ]
    sealed = json.loads(cli(db_url, "cycle", "show", str(approved), "--json").stdout)
    assert sealed["model"] == {"version": "2026.11", "sha256": "m" * 64}
    assert sealed["ruleset"] == {"name": "rules.yaml", "sha256": "r" * 64}
    archived = rows[2]["sealed"]["content"]["steps"][0]
    assert sealed["steps"][0] == {"step": "scope", "done": True, "attachments": []} | {
        key: archived[key] for key in ("done_by", "done_at", "note", "evidence", "result")}  # the archive, not live
    assert [s["done"] for s in sealed["steps"]] == [True] + [False] * 6
    assert (sealed["digest"], sealed["sealed"], sealed["approver"]) == ("d" * 64, True, "maria")
    text = cli(db_url, "cycle", "show", str(draft))
    assert text.returncode == 0 and f"{draft}" in text.stdout and "feeds ok" in text.stdout
    assert refused(db_url, "cycle", "show", "999") == "error: unknown cycle 999"


def _typed_names() -> dict[str, str]:
    """The names the cycles package's `if TYPE_CHECKING:` block imports, by module."""
    tree = ast.parse(Path(cycles.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.name: node.module or "" for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def test_every_name_of_the_cycles_package_is_given_at_run_time_from_its_module() -> None:
    typed = _typed_names()
    assert len(typed) >= 20  # the block was found
    for name, module in typed.items():
        assert getattr(cycles, name) is getattr(importlib.import_module(module), name), name
    with pytest.raises(AttributeError, match="no_such_name"):
        getattr(cycles, "no_such_name")  # noqa: B009 - the access is the test


# --- deviations list ----------------------------------------------------------------------------------------------


def test_deviations_list(db_url: str, database: Database, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    factory.account("GLOBEX", owner="maria")
    with database.engine.connect() as conn:
        account = {ext: pk for ext, pk in conn.execute(select(ACCOUNTS.c.external_id, ACCOUNTS.c.id))}
    found = NOW - timedelta(days=2)
    rows = [
        {"account_id": account["ACME"], "kind": "stale", "subject": "usage", "detail": "14d old", "status": "open"},
        {"account_id": account["GLOBEX"], "kind": "missing", "subject": "nps", "detail": "no reading",
         "status": "accepted", "accepted_by": "maria", "reason": "feed fix", "accepted_until": date(2027, 1, 15)},
        {"account_id": None, "kind": "model_mismatch", "subject": "model 1", "detail": "weights", "status": "open"},
        {"account_id": account["ACME"], "kind": "duplicate", "subject": "usage", "detail": "2 readings",
         "status": "resolved", "resolved_at": NOW},
    ]
    pks = write(database, DEVIATIONS, *({"found_at": found, "last_seen_at": found} | row for row in rows))
    names = {v: k for k, v in account.items()}
    expected = {
        pk: {"id": pk, "account": names.get(row["account_id"]), "kind": row["kind"], "subject": row["subject"],
             "detail": row["detail"], "status": row["status"], "found_at": found.isoformat(),
             "accepted_by": row.get("accepted_by"), "reason": row.get("reason"),
             "accepted_until": row["accepted_until"].isoformat() if "accepted_until" in row else None}
        for pk, row in zip(pks, rows, strict=True)
    }

    def having(test: Any) -> list[Any]:
        """The expected rows that pass `test`, newest first."""
        return [expected[pk] for pk in sorted(expected, reverse=True) if test(expected[pk])]

    core_only(db_url, "deviations", "list")
    core_only(db_url, "deviations", "list", "--account", "ACME", "--json")
    core_only(db_url, "--as", "bob", "deviations", "list", "--mine", "--open", "--json")
    assert listed(db_url, "deviations", "list") == {"total": 4, "offset": 0, "limit": None,
                                                    "items": having(lambda d: True)}
    assert items(db_url, "deviations", "list", "--open") == having(lambda d: d["status"] != "resolved")
    assert items(db_url, "deviations", "list", "--status", "resolved") == having(lambda d: d["status"] == "resolved")
    assert items(db_url, "deviations", "list", "--account", "ACME") == having(lambda d: d["account"] == "ACME")
    assert items(db_url, "deviations", "list", "--account", str(account["GLOBEX"])) == having(
        lambda d: d["account"] == "GLOBEX")
    assert items(db_url, "deviations", "list", "--kind", "model_mismatch") == having(lambda d: d["account"] is None)
    assert items(db_url, "deviations", "list", "--owner", "maria") == having(lambda d: d["account"] == "GLOBEX")
    assert items(db_url, "--as", "bob", "deviations", "list", "--mine", "--open") == having(
        lambda d: d["account"] == "ACME" and d["status"] == "open")
    assert items(db_url, "deviations", "list", "--sort", "kind") == sorted(
        having(lambda d: True), key=lambda d: d["kind"])
    by_account = [d for d in having(lambda d: True) if d["account"] is not None]
    by_account.sort(key=lambda d: d["account"])
    nulls = having(lambda d: d["account"] is None)
    assert items(db_url, "deviations", "list", "--sort", "account") in (by_account + nulls, nulls + by_account)
    page = listed(db_url, "deviations", "list", "--sort", "oldest", "--limit", "2", "--offset", "1")
    assert (page["total"], page["items"]) == (4, [expected[pk] for pk in sorted(expected)[1:3]])
    assert refused(db_url, "deviations", "list", "--account", "NOPE") == "error: unknown account 'NOPE'"


def test_the_reads_serve_a_session_too(database: Database, factory: Factory) -> None:
    """The web app and the services pass a session to the same Core reads (`Session.execute` of a Core statement)."""
    seed_cycles(database, factory)
    with database.transaction() as session:
        listed_cycles = [cycles.summary_dict(session, c) for c in cycles.list_cycles(session)]
        drafts = cycles.list_cycles(session, "draft")
        mapped = cycles.cycle_dict(session, cycles.get_cycle(session, drafts[0].id))
    assert [c["state"] for c in listed_cycles] == ["approved", "submitted", "draft"]
    assert mapped["steps_done"] == 2 and mapped["decisions"][0]["account"] == "GLOBEX"
