"""Rules stage alone: accounts/s of durable-rules (2 worker processes, start-up included) vs the plain evaluator.

Run: .venv/bin/python bench/evaluate.py [N_ACCOUNTS]   (the full `evaluate` over 100k on SQLite is not measured yet)
"""

from __future__ import annotations

import random
import sys
import time
from pathlib import Path

from pulsecheck.rules import durable
from pulsecheck.rules.evaluator import evaluate_plain
from pulsecheck.rules.language import load_rules_file


def facts(rnd: random.Random) -> dict[str, object]:
    return {"score": rnd.uniform(0, 100), "bucket": rnd.choice(["unhealthy", "neutral", "healthy"]),
            "score_drop_30d": rnd.uniform(0, 30), "open_complaints": rnd.randint(0, 3),
            "days_to_renewal": rnd.randint(-10, 400), "low_score_streak": rnd.randint(0, 5),
            "stale_inputs": rnd.randint(0, 1), "max_score_30d": rnd.uniform(0, 100), "kpi.nps": rnd.uniform(-100, 100),
            "open_high_tickets_60d": rnd.randint(0, 4)}


def main(n: int) -> None:
    rules = load_rules_file(Path(__file__).parents[1] / "examples" / "rules.yaml")
    rnd = random.Random(1)
    accounts = [(i, facts(rnd)) for i in range(n)]
    t0 = time.perf_counter()
    plain = evaluate_plain(rules.rules, accounts)
    t_plain = time.perf_counter() - t0
    t0 = time.perf_counter()
    engine = durable.evaluate(rules, accounts, workers=2)
    t_engine = time.perf_counter() - t0
    assert engine == plain, "engines disagree"
    print(f"{n} accounts, {len(rules.rules)} rules, {len(plain)} firings (identical in both engines)")
    print(f"plain evaluator: {n / t_plain:,.0f} accounts/s ({t_plain:.2f} s)")
    print(f"durable-rules, 2 worker processes incl. start-up: {n / t_engine:,.0f} accounts/s ({t_engine:.2f} s); "
          f"ratio {t_engine / t_plain:.1f}x")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100_000)
