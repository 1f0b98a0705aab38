"""The web app under a bounded load on loopback: C signed-in clients for S seconds against `pulsecheck serve`,
each page's p50, p95 and requests per second, beside the floor of the same server answering `/api/v1/health`
(HTTP, middleware and cookie signing, no page) in the same run.

Set-up (not timed): N accounts (bulk inserts) owned by bob, one draft review and one open escalation per 10
accounts, bob and maria with passwords. The server runs as a real process (`serve`, or `serve --workers 2` when
PULSECHECK_BENCH_PG names a PostgreSQL URL, as the issue's goal is stated).
Timed: each client loops over inbox, a review page, an account page and the portfolio, until S seconds or
500 requests per client; the floor is the same loop over `/api/v1/health`.
Run: .venv/bin/python bench/web.py [N] [S] [C]   (default 100000 60 8)
"""

from __future__ import annotations

import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bulk import bulk_insert  # noqa: E402
from common import report  # noqa: E402

from pulsecheck.storage.db import Database  # noqa: E402
from pulsecheck.storage.migrate import upgrade  # noqa: E402
from pulsecheck.storage.models import Account, Escalation, Review, User, WebPassword  # noqa: E402

NOW = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
PASSWORD = "bench password"
GOALS = {"inbox": 0.150, "review": 0.150, "account": 0.150, "portfolio": 1.0}  # p95 seconds (issue 15)
MAX_PER_CLIENT = 500


def seed(url: str, n: int) -> None:
    from argon2 import PasswordHasher

    database = Database(url)
    upgrade(database.engine)
    digest = PasswordHasher().hash(PASSWORD)
    with database.engine.begin() as conn:
        bulk_insert(conn, User.__table__, [
            {"name": "maria", "roles": "manager", "created_at": NOW},
            {"name": "bob", "roles": "reviewer", "manager_name": "maria", "created_at": NOW},
        ])
        bulk_insert(conn, WebPassword.__table__, [{"user_id": 1, "hash": digest, "set_at": NOW},
                                                  {"user_id": 2, "hash": digest, "set_at": NOW}])
        bulk_insert(conn, Account.__table__, ({"external_id": f"A{i}", "name": f"Account {i}", "owner_id": 2,
                                               "manager_id": 1, "segment": "smb", "arr": 1000.0 * i}
                                              for i in range(1, n + 1)))
        reviews = range(1, n + 1, 10)
        bulk_insert(conn, Review.__table__, ({"account_id": a, "state": "draft", "reviewer": "bob", "approver": "maria",
                                              "created_at": NOW, "updated_at": NOW, "version_id": 1, "priority": "P3",
                                              "kind": "cadence", "reminders_sent": 0,
                                              "due_at": NOW + timedelta(days=14)} for a in reviews))
        bulk_insert(conn, Escalation.__table__, ({"account_id": a, "rule_id": "drop", "severity": "high",
                                                  "priority": "P2", "reason": "bench", "owner": "bob", "level": 0,
                                                  "opened_at": NOW, "status": "open", "dedupe_key": f"{a}:drop"}
                                                 for a in reviews))
    database.dispose()


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


def signed_in(base: str) -> httpx.Client:
    client = httpx.Client(base_url=base, timeout=30)
    token = re.search(r'name="csrf" value="([^"]+)"', client.get("/signin").text)
    assert token
    client.post("/signin", data={"name": "bob", "password": PASSWORD, "csrf": token.group(1)})
    return client


def load(base: str, paths: dict[str, str], seconds: float, clients: int) -> tuple[dict[str, list[float]], int, float]:
    """Per page the latencies; the error count; the elapsed wall time."""
    times: dict[str, list[float]] = {name: [] for name in paths}
    errors = [0]
    lock = threading.Lock()
    signed = [signed_in(base) for _ in range(clients)]  # sign-in (argon2) is not part of the timed load
    stop = time.perf_counter() + seconds

    def run(client: httpx.Client) -> None:
        for _ in range(MAX_PER_CLIENT):
            if time.perf_counter() > stop:
                break
            for name, path in paths.items():
                started = time.perf_counter()
                status = client.get(path).status_code
                took = time.perf_counter() - started
                with lock:
                    times[name].append(took)
                    errors[0] += status != 200
        client.close()

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(client,)) for client in signed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return times, errors[0], time.perf_counter() - started


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1] if len(values) >= 2 else (values[0] if values else 0.0)


def main() -> None:
    args = [int(a) for a in sys.argv[1:]]
    n, seconds, clients = (args + [100_000, 60, 8][len(args):])[:3]
    pg = os.environ.get("PULSECHECK_BENCH_PG")
    with tempfile.TemporaryDirectory() as tmp:
        url = pg or f"sqlite:///{Path(tmp) / 'bench.db'}"
        seed(url, n)
        process, base = serve(url, 2 if pg else 1)
        try:
            floor, floor_errors, floor_wall = load(base, {"health": "/api/v1/health"}, seconds / 4, clients)
            pages = {"inbox": "/", "review": "/reviews/1", "account": "/accounts/A1", "portfolio": "/portfolio"}
            times, errors, wall = load(base, pages, seconds, clients)
        finally:
            process.terminate()
            process.wait(timeout=30)
    health = floor["health"]
    print(f"web: {n} accounts, {clients} clients, {seconds}s, {'PostgreSQL, 2 workers' if pg else 'SQLite, 1 worker'}")
    print(f"  floor /api/v1/health  p50 {statistics.median(health) * 1000:7.1f} ms  p95 {p95(health) * 1000:7.1f} ms"
          f"  {len(health) / floor_wall:7.1f} req/s  errors {floor_errors}")
    for name, values in times.items():
        ratio = p95(values) / max(p95(health), 1e-9)
        verdict = "ok" if p95(values) <= GOALS[name] else "OVER"
        print(f"  {name:<9}             p50 {statistics.median(values) * 1000:7.1f} ms  p95 {p95(values) * 1000:7.1f}"
              f" ms  {len(values) / wall:7.1f} req/s  p95 {ratio:5.1f}x floor  goal p95 <= {GOALS[name] * 1000:.0f} ms"
              f" {verdict}")
        report(f"web {name} p95", p95(values) * 1000, "ms", p95(health) * 1000, f"<= {GOALS[name] * 1000:.0f}",
               floor_label="/api/v1/health p95", note=f"{n} accounts, {clients} clients, {len(values)} requests")
    print(f"  errors {errors} (goal 0)")
    report("web errors (non-200 answers)", errors, "requests", None, "<= 0", note=f"{n} accounts, {clients} clients")


if __name__ == "__main__":
    main()
