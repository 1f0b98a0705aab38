"""The web app under a bounded load on loopback: C signed-in clients for S seconds against `pulsecheck serve`,
each page's p50, p95 and requests per second, beside the floor of the same server answering `/api/v1/health`
(HTTP, middleware and cookie signing, no page) in the same run; and each page's server CPU time per request
(the server's processes, read from /proc, one page at a time), beside the floor's: steadier than wall time on a
busy machine; on PostgreSQL also the database's CPU time per request (the backends serving the bench database).

Set-up (not timed): N accounts (COPY on PostgreSQL, executemany on SQLite; bench/bulk.py) over 4 segments and 21
owners (bob owns one in 21), the example model approved, 6 monthly snapshots per account, 1% with an open
escalation, 1% with open issues, a draft review for bob per 50 accounts (a third overdue), and reviews bob
submitted (through the workflow, signed as the CLI does) for maria to approve. With PULSECHECK_BENCH_PG (a server
URL, e.g. postgresql+psycopg://postgres@127.0.0.1:5432/test) the bench creates a fresh database
`pulsecheck_bench_web` on that server, runs `serve --workers 2` on it and drops it at the end; otherwise SQLite
and one worker (the tiny run of tests/cli/test_benches.py).
Not timed: each client first fetches every portfolio page once (a worker keeps each scope's book after its first
read on PostgreSQL, as a server that has run a while has); those first reads are printed apart.
Timed: half the clients are bob (reviewer), half maria (manager); each loops over the inbox, a review page, an
account page and the portfolio (the first page, filtered, sorted, searched or a deeper page, in turn); maria's
clients also approve one submitted review per loop (303 expected). Floor: the same clients on /api/v1/health.
Run: PULSECHECK_BENCH_PG=... .venv/bin/python bench/web.py [N] [S] [C]   (default 100000 60 8)
"""

from __future__ import annotations

import itertools
import os
import random
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk import copy_insert  # noqa: E402
from common import report  # noqa: E402

from pulsecheck.storage.db import Database  # noqa: E402
from pulsecheck.storage.migrate import upgrade  # noqa: E402
from pulsecheck.storage.models import Account, Escalation, Issue, Review, ScoreSnapshot, User  # noqa: E402

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PASSWORD = "bench password"
GOALS = {"inbox": 0.150, "review": 0.150, "account": 0.150, "portfolio": 1.0, "approve": 0.150}  # p95 s (issue 15)
MAX_PER_CLIENT = 500
MODEL = Path(__file__).resolve().parent.parent / "examples" / "scoring.yaml"
MONTHS = 6
OWNERS = 20
SEGMENTS = ("enterprise", "mid-market", "smb", "public")
BENCH_DB = os.environ.get("PULSECHECK_BENCH_DB", "pulsecheck_bench_web")
PORTFOLIO = ("/portfolio", "/portfolio?segment=smb", "/portfolio?sort=-arr", "/portfolio?priority=P1&page=3",
             "/portfolio?q=account%2012", "/portfolio?owner=bob&bucket=unhealthy", "/portfolio?sort=name&page=40")
CSRF = re.compile(r'name="csrf" value="([^"]+)"')
TAGS = re.compile(r"<[^>]+>|\s+")


def _bucket(score: float) -> str:  # the example model's buckets
    return "unhealthy" if score < 40 else "neutral" if score < 80 else "healthy"


def _accounts(n: int, owners: list[int], manager: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(5)
    for i in range(1, n + 1):
        yield {"external_id": f"A{i}", "name": f"Account {i}", "segment": SEGMENTS[i % len(SEGMENTS)],
               "tier": "gold" if i % 10 == 0 else "standard", "arr": float(rng.randrange(5_000, 400_000, 1_000)),
               "owner_id": owners[i % len(owners)], "manager_id": manager,
               "renewal_date": NOW.date() + timedelta(days=rng.randrange(-30, 400)),
               "contract_start": date(2024, 1, 1) + timedelta(days=i % 600)}


def _snapshots(n: int, model_id: int) -> Iterator[dict[str, Any]]:
    rng = random.Random(7)
    for account_id in range(1, n + 1):
        score, drift = rng.uniform(25, 98), rng.uniform(-2, 1.5)
        for month in range(MONTHS - 1, -1, -1):
            score = min(100.0, max(0.0, score + drift + rng.uniform(-4, 4)))
            yield {"account_id": account_id, "as_of": NOW - timedelta(days=30 * month), "score": round(score, 2),
                   "bucket": _bucket(score), "model_id": model_id, "provisional": False,
                   "components": [{"kpi": "usage", "raw": round(score, 1), "normalized": round(score, 1),
                                   "weight": 100.0, "effective_weight": 100.0, "contribution": round(score, 2),
                                   "status": "ok"}]}


def _escalations(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(7, n + 1, 100):
        yield {"account_id": account_id, "rule_id": "drop", "severity": "high", "reason": "bench",
               "priority": ("P1", "P2", "P2", "P3")[account_id % 4], "owner": "bob" if account_id % 3 else "maria",
               "level": 0, "opened_at": NOW - timedelta(days=account_id % 90), "status": "open",
               "dedupe_key": f"{account_id}:drop"}


def _issues(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(13, n + 1, 100):
        for k in range(3):
            yield {"external_id": f"I{account_id}-{k}", "account_id": account_id, "kind": "complaint",
                   "severity": "high", "status": "open", "opened_at": NOW - timedelta(days=10)}


def _drafts(n: int) -> Iterator[dict[str, Any]]:
    for account_id in range(1, n + 1, 50):
        due = NOW + timedelta(days=(account_id % 3 - 1) * 10)  # a third overdue
        yield {"account_id": account_id, "state": "draft", "reviewer": "bob", "approver": "maria",
               "created_at": due - timedelta(days=14), "updated_at": due - timedelta(days=14), "version_id": 1,
               "priority": "P3", "kind": "cadence", "reminders_sent": 0, "due_at": due}


def seed(url: str, n: int, to_approve: int) -> tuple[list[int], list[tuple[int, int]]]:
    """The book; (draft review ids, (id, version) of each submitted review)."""
    from sqlalchemy import select

    from pulsecheck.storage import chain
    from pulsecheck.workflow import reviews
    from pulsecheck.workflow.models import approve_model
    from pulsecheck.workflow.review_form import parse_form
    from pulsecheck.workflow.signin import set_password
    from pulsecheck.workflow.users import add_user

    database = Database(url)
    upgrade(database.engine)
    chain.install(database)
    with database.transaction() as session:
        add_user(session, "olga", ["ops", "manager", "admin"], NOW)
        add_user(session, "maria", ["manager"], NOW)
        add_user(session, "bob", ["reviewer"], NOW, manager="maria")
        for i in range(1, OWNERS + 1):
            add_user(session, f"owner{i}", ["reviewer"], NOW, manager="maria")
        session.flush()
        olga = session.scalars(select_user("olga")).one()
        for name in ("maria", "bob"):
            set_password(session, olga, name, PASSWORD, NOW)
        model_id = approve_model(session, MODEL, olga, NOW - timedelta(days=400)).id
        owners = [session.scalars(select_user(f"owner{i}")).one().id for i in range(1, OWNERS + 1)]
        owners.append(session.scalars(select_user("bob")).one().id)
        maria = session.scalars(select_user("maria")).one().id
    with database.engine.begin() as conn:
        copy_insert(conn, Account.__table__, _accounts(n, owners, maria))
        copy_insert(conn, ScoreSnapshot.__table__, _snapshots(n, model_id))
        copy_insert(conn, Escalation.__table__, _escalations(n))
        copy_insert(conn, Issue.__table__, _issues(n))
        copy_insert(conn, Review.__table__, _drafts(n))
    with database.transaction() as session:
        drafts = list(session.scalars(select(Review.id).where(Review.state == "draft")))
    form = parse_form({"account_goals": "Grow", "goal_summary": "On track", "overall_assessment": "Healthy",
                       "next_review_date": (NOW + timedelta(days=90)).date(),
                       "risks": [{"description": "Champion leaving", "severity": "high", "evidence": "call notes",
                                  "actions": [{"description": "Find a second champion", "owner": "bob",
                                               "due_date": (NOW + timedelta(days=30)).date()}]}]}, "bench")
    submitted = []
    bobs = (i for i in range(OWNERS, n + 1, OWNERS + 1) if i % 50 != 1)  # bob's accounts without a draft
    for account_id in itertools.islice(bobs, to_approve):
        with database.transaction() as session:
            bob = session.scalars(select_user("bob")).one()
            review = reviews.new_review(session, f"A{account_id}", bob, NOW, timedelta(days=14))
            reviews.fill(session, review.id, form, bob, NOW)
            done = reviews.transition(session, review.id, "submit", bob, NOW)
            session.flush()
            submitted.append((review.id, done.version_id))
    if database.engine.dialect.name == "postgresql":
        with database.engine.connect() as conn:
            # as autovacuum would: index-only scans need the visibility map
            conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql("VACUUM ANALYZE")
    database.dispose()
    return drafts, submitted


def select_user(name: str) -> Any:
    from sqlalchemy import select

    return select(User).where(User.name == name)


def serve(url: str, workers: int) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PULSECHECK_DATABASE_URL": url, "PULSECHECK_NOW": NOW.isoformat()}
    command = [str(Path(sys.executable).with_name("pulsecheck")), "serve", "--port", str(port),
               "--workers", str(workers)]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    for _ in range(600):  # at most 60 s
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                return process, base
        except httpx.TransportError:
            time.sleep(0.1)
    process.terminate()
    raise SystemExit("the server did not start")


def signed_in(base: str, name: str) -> tuple[httpx.Client, str]:
    """A client signed in as `name`, and its session's CSRF token."""
    client = httpx.Client(base_url=base, timeout=60)
    token = CSRF.search(client.get("/signin").text)
    assert token
    client.post("/signin", data={"name": name, "password": PASSWORD, "csrf": token.group(1)})
    token = CSRF.search(client.get("/").text)
    assert token, f"{name} did not sign in"
    return client, token.group(1)


class Load:
    """C clients (bob and maria in turn) looping over the pages; latencies per page, errors."""

    def __init__(self, base: str, clients: int, drafts: list[int], submitted: list[tuple[int, int]], n: int) -> None:
        # sign-in (argon2) is not part of the timed load
        self.clients = [(name, *signed_in(base, name)) for name in itertools.islice(itertools.cycle(("bob", "maria")),
                                                                                     clients)]
        self.drafts, self.n = drafts, n
        self.to_approve = iter(submitted)
        self.lock = threading.Lock()
        self.times: dict[str, list[float]] = {}
        self.errors: dict[str, int] = {}
        self.said: dict[str, str] = {}

    def run(self, seconds: float, floor: bool = False) -> float:
        """Every client loops for `seconds` (or MAX_PER_CLIENT loops); the elapsed wall time."""
        self.times, self.errors = {}, {}
        stop = time.perf_counter() + seconds
        started = time.perf_counter()
        threads = [threading.Thread(target=self._loop, args=(client, stop, floor, k))
                   for k, client in enumerate(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return time.perf_counter() - started

    def warm(self) -> list[float]:
        """Every client fetches every portfolio page once, all at once (not timed with the load): each worker reads
        each scope's book then (PostgreSQL), as a server that has run for a while has; the latencies of these
        first reads, reported apart."""
        self.times, self.errors = {}, {}
        def first_reads(http: httpx.Client) -> None:
            for path in PORTFOLIO:
                self._timed("cold", http, path)

        threads = [threading.Thread(target=first_reads, args=(http,)) for _, http, _ in self.clients]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return self.times["cold"]

    def _loop(self, client: tuple[str, httpx.Client, str], stop: float, floor: bool, k: int) -> None:
        name, http, csrf = client
        rng = random.Random(k)
        for turn in range(MAX_PER_CLIENT):
            if time.perf_counter() > stop:
                break
            if floor:
                self._timed("health", http, "/api/v1/health")
                continue
            self._timed("inbox", http, "/")
            self._timed("review", http, f"/reviews/{rng.choice(self.drafts)}")
            self._timed("account", http, f"/accounts/A{rng.randrange(1, self.n + 1)}")
            self._timed("portfolio", http, PORTFOLIO[(k + turn) % len(PORTFOLIO)])
            if name == "maria":
                with self.lock:
                    review = next(self.to_approve, None)
                if review is not None:
                    form = {"csrf": csrf, "version": str(review[1]), "comment": "Agreed, thanks"}
                    self._timed("approve", http, f"/reviews/{review[0]}/approve", form, 303)

    def _timed(self, page: str, http: httpx.Client, path: str, form: dict[str, str] | None = None,
               expected: int = 200) -> None:
        """GET `path` (POST `form` to it) and record the time and whether the status was `expected`."""
        started = time.perf_counter()
        try:
            answer = http.get(path) if form is None else http.post(path, data=form)
            status, said = answer.status_code, answer.text
        except httpx.HTTPError as exc:
            status, said = 0, str(exc)
        took = time.perf_counter() - started
        with self.lock:
            self.times.setdefault(page, []).append(took)
            self.errors[page] = self.errors.get(page, 0) + (status != expected)
            if status != expected and page not in self.said:  # the first wrong answer of a page, to say why
                self.said[page] = f"{path}: {status} {TAGS.sub(' ', said)[:300]}"


def _proc_cpu(entry: Path) -> tuple[int, float] | None:
    """(parent pid, CPU seconds user + system) of the process at /proc/`entry`, or None once it is gone."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1]), (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def server_cpu(pid: int) -> float:
    """CPU seconds (user + system) of process `pid` and its children so far, from /proc."""
    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        found = _proc_cpu(entry)
        if found is not None and (int(entry.name) == pid or found[0] == pid):  # the server and its workers
            total += found[1]
    return total


def database_cpu(url: str | None) -> dict[int, float]:
    """CPU seconds so far of each PostgreSQL backend serving the bench database (same machine: its /proc), by pid;
    empty without PostgreSQL."""
    if url is None:
        return {}
    import psycopg

    with psycopg.connect(url.replace("+psycopg", ""), autocommit=True) as conn:
        pids = [row[0] for row in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")]
    found = {pid: _proc_cpu(Path("/proc") / str(pid)) for pid in pids}
    return {pid: cpu[1] for pid, cpu in found.items() if cpu is not None}


def cpu_per_request(pid: int, http: httpx.Client, path: str, count: int, db_url: str | None) -> tuple[float, float]:
    """Server and database CPU milliseconds per request of `path`, asked `count` times in a row by one client."""
    http.get(path)  # warm
    before, db_before = server_cpu(pid), database_cpu(db_url)
    for _ in range(count):
        http.get(path)
    time.sleep(0.2)  # the workers' clocks tick in 10 ms steps: let the last one land
    db_after = database_cpu(db_url)
    db = sum(cpu - db_before.get(backend, 0.0) for backend, cpu in db_after.items())
    return (server_cpu(pid) - before) * 1000 / count, db * 1000 / count


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def pg_database(server: str) -> tuple[str, Any]:
    """A fresh database BENCH_DB on the server `server` names; its URL and a function that drops it."""
    import psycopg

    plain = server.replace("+psycopg", "")
    admin = plain.rsplit("/", 1)[0] + "/postgres" if "/" in plain.split("@", 1)[-1] else plain

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {BENCH_DB} WITH (FORCE)")

    drop()
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {BENCH_DB}")
    return server.rsplit("/", 1)[0] + f"/{BENCH_DB}", drop


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n, seconds, clients = (args + [100_000, 60, 8][len(args):])[:3]
    pg = os.environ.get("PULSECHECK_BENCH_PG")
    drop = None
    with tempfile.TemporaryDirectory() as tmp:
        if pg:
            url, drop = pg_database(pg)
        else:
            url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        try:
            started = time.perf_counter()
            drafts, submitted = seed(url, n, clients * seconds // 2 + 10)
            print(f"set-up: {n:,} accounts x {MONTHS} snapshots, {len(drafts):,} drafts, {len(submitted)} reviews "
                  f"to approve in {time.perf_counter() - started:.1f} s (not timed)", flush=True)
            process, base = serve(url, 2 if pg else 1)
            try:
                load = Load(base, clients, drafts, submitted, n)
                floor_wall = load.run(seconds / 4, floor=True)
                floor, floor_errors = load.times["health"], load.errors["health"]
                cold = load.warm()
                load_avg = os.getloadavg()
                wall = load.run(seconds)
                load_avg = tuple(max(a, b) for a, b in zip(load_avg, os.getloadavg(), strict=True))
                http = load.clients[0][1]
                cpu_count = 10 if n > 1000 else 2
                db_url = url if pg else None
                measured = {"health": cpu_per_request(process.pid, http, "/api/v1/health", cpu_count * 5, db_url),
                            "inbox": cpu_per_request(process.pid, http, "/", cpu_count, db_url),
                            "review": cpu_per_request(process.pid, http, f"/reviews/{drafts[0]}", cpu_count, db_url),
                            "account": cpu_per_request(process.pid, http, "/accounts/A1", cpu_count, db_url),
                            "portfolio": cpu_per_request(process.pid, http, "/portfolio", cpu_count, db_url)}
                cpu = {name: server for name, (server, _db) in measured.items()}
                db_cpu = {name: db for name, (_server, db) in measured.items()}
                for _, client, _ in load.clients:
                    client.close()
            finally:
                process.terminate()
                process.wait(timeout=30)
        finally:
            if drop is not None:
                drop()
    where = "PostgreSQL, serve --workers 2" if pg else "SQLite, serve (1 worker)"
    print(f"web: {n:,} accounts, {clients} clients, {seconds}s, {where}, load average (max 1/5/15 min) "
          + " ".join(f"{a:.1f}" for a in load_avg))
    print(f"  floor /api/v1/health  p50 {statistics.median(floor) * 1000:7.1f} ms  p95 {p95(floor) * 1000:7.1f} ms"
          f"  {len(floor) / floor_wall:7.1f} req/s  errors {floor_errors}  server CPU {cpu['health']:.1f} ms/req"
          + (f"  database CPU {db_cpu['health']:.1f} ms/req" if pg else ""))
    print(f"  portfolio, first reads (each client each portfolio page once, before the load)  p50 "
          f"{statistics.median(cold) * 1000:7.1f} ms  max {max(cold) * 1000:7.1f} ms  (not in the p95 below)")
    for name, values in load.times.items():
        verdict = "ok" if p95(values) <= GOALS[name] else "OVER"
        cpu_text = f"  server CPU {cpu[name]:.1f} ms/req" if name in cpu else ""
        cpu_text += f"  database CPU {db_cpu[name]:.1f} ms/req" if pg and name in db_cpu else ""
        print(f"  {name:<9}             p50 {statistics.median(values) * 1000:7.1f} ms  p95 {p95(values) * 1000:7.1f}"
              f" ms  {len(values) / wall:7.1f} req/s  errors {load.errors[name]}  goal p95 <= "
              f"{GOALS[name] * 1000:.0f} ms {verdict}{cpu_text}")
    for name, values in load.times.items():
        report(f"web {name} p95", p95(values) * 1000, "ms", p95(floor) * 1000, f"<= {GOALS[name] * 1000:.0f}",
               floor_label="/api/v1/health p95",
               note=f"{n} accounts, {clients} clients, {len(values)} requests, p50 "
                    f"{statistics.median(values) * 1000:.1f} ms, {len(values) / wall:.1f} req/s")
        if name in cpu:
            report(f"web {name} server CPU per request", cpu[name], "ms", cpu["health"] or None,
                   f"<= {GOALS[name] * 1000:.0f}",
                   floor_label="/api/v1/health server CPU", note="one client, one page at a time")
        if pg and name in db_cpu:
            report(f"web {name} database CPU per request", db_cpu[name], "ms", cpu["health"] or None,
                   f"<= {GOALS[name] * 1000:.0f}", floor_label="/api/v1/health server CPU",
                   note="PostgreSQL backends of the bench database, one client, one page at a time")
    errors = sum(load.errors.values())
    print(f"  errors {errors} (goal 0)" + "".join(f"\n    first {page}: {text}" for page, text in load.said.items()))
    report("web errors (answers other than 200, or 303 for approve)", errors, "requests", None, "<= 0",
           note=f"{n} accounts, {clients} clients")


if __name__ == "__main__":
    main()
