"""Rules compiled to durable-rules JSON and evaluated through its C API in worker processes.

Follows shared/research/durable_rules.md sections 4 and 8: one `$and` pattern on the account fact per
rule, no events, `$not`, timers or Host threads; at most 50 rules (and ~60 `$or` branches) per ruleset;
a `$sentinel` rule so `delete_state` is safe; explicit fact ids; one sid per account, deleted after use.
The C core can segfault, so it only ever runs in child processes: a crash fails the run, never the caller.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pulsecheck.errors import PulsecheckError
from pulsecheck.rules.evaluator import clean_facts
from pulsecheck.rules.language import BOOLEAN, All, AnyOf, Leaf, Node, Rule, RulesFile, fact_type, normalize

MAX_RULES = 50
MAX_BRANCHES = 60  # P12: more than 64 simultaneously true alpha branches per fact fail the whole assert
SENTINEL = {"$sentinel": {"all": [{"m": {"$s": 1}}]}}
_OPS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}


class EngineCrashed(PulsecheckError):
    """The durable-rules core died in a worker; nothing was written."""


def field_name(fact: str) -> str:
    """Engine field for a fact: dotted names would be read as nested paths by durable-rules."""
    return fact.replace(".", "__")


def _literal(fact: str, value: Any) -> Any:
    return int(value) if fact_type(fact) == BOOLEAN else value


def compile_node(node: Node) -> dict[str, Any]:
    """A normalized condition as a durable-rules expression."""
    if isinstance(node, All):
        return {"$and": [compile_node(item) for item in node.items]}
    if isinstance(node, AnyOf):
        return {"$or": [compile_node(item) for item in node.items]}
    assert isinstance(node, Leaf), "normalize() removes Not"
    name, op, value = field_name(node.fact), node.op, node.value
    if op == "eq":
        return {name: _literal(node.fact, value)}
    if op in _OPS:
        return {_OPS[op]: {name: _literal(node.fact, value)}}
    if op == "in":
        return {"$or": [{name: _literal(node.fact, v)} for v in value]}
    if op == "not_in":
        return {"$and": [{"$neq": {name: _literal(node.fact, v)}} for v in value]}
    if op == "between":
        return {"$and": [{"$gte": {name: value[0]}}, {"$lte": {name: value[1]}}]}
    return {"$ex" if op == "exists" else "$nex": {name: 1}}


def _branches(node: Node) -> int:
    if isinstance(node, AnyOf):
        return sum(_branches(item) for item in node.items)
    if isinstance(node, All):
        return max(1, max((_branches(item) for item in node.items), default=1))
    return 1


def compile_rule(rule: Rule) -> dict[str, Any]:
    """One rule as one pattern on the account fact."""
    return {"all": [{"m": {"$and": [{"kind": "account"}, compile_node(normalize(rule.when))]}}]}


def compile_rules(rules_file: RulesFile) -> list[tuple[str, str]]:
    """Shards of (versioned ruleset name, ruleset JSON)."""
    shards: list[dict[str, Any]] = []
    weight = 0
    for rule in rules_file.rules:
        cost = _branches(normalize(rule.when))
        if not shards or len(shards[-1]) >= MAX_RULES or weight + cost > MAX_BRANCHES:
            shards.append({})
            weight = 0
        shards[-1][rule.id] = compile_rule(rule)
        weight += cost
    stem = rules_file.source.rsplit("/", 1)[-1].split(".")[0] or "rules"
    return [
        (f"{stem}.{i}@{rules_file.sha256[:12]}", json.dumps({**shard, **SENTINEL})) for i, shard in enumerate(shards)
    ]


def encode_fact(account: int, facts: Mapping[str, Any]) -> str:
    """The account fact as durable-rules sees it: missing facts omitted, booleans as 0/1, rounded numbers."""
    fields: dict[str, Any] = {"id": f"account:{account}", "sid": str(account), "kind": "account"}
    for name, value in clean_facts(facts).items():
        if value is None:
            continue
        fields[field_name(name)] = int(value) if isinstance(value, bool) else value
    return json.dumps([fields])


# --- worker side -----------------------------------------------------------------------------------

_HANDLES: list[int] = []


def _init_worker(shards: list[tuple[str, str]], crash: bool) -> None:
    import ctypes

    import durable_rules_engine as dre

    try:  # P10: keep glibc from trimming the heap after every delete_state
        ctypes.CDLL("libc.so.6").mallopt(-1, 256 << 20)
    except OSError:
        pass
    _HANDLES.clear()
    _HANDLES.extend(dre.create_ruleset(name, text) for name, text in shards)
    if crash:  # test hook: behave like the C core segfaulting
        import os

        os.abort()


def _evaluate_chunk(chunk: list[tuple[int, str]]) -> list[tuple[int, str]]:
    import durable_rules_engine as dre

    fired: set[tuple[int, str]] = set()
    for account, payload in chunk:
        for handle in _HANDLES:
            _, state = dre.assert_facts(handle, payload)
            result = dre.start_action_for_state(handle, state)
            message = result[1] if result else None
            while message:
                fired.add((account, next(iter(json.loads(message)))))
                message = dre.complete_and_start_action(handle, state)
            dre.delete_state(handle, str(account))
    return sorted(f for f in fired if f[1] != "$sentinel")


def evaluate(
    rules_file: RulesFile,
    facts_by_account: Iterable[tuple[int, Mapping[str, Any]]],
    workers: int = 2,
    chunk_size: int = 2000,
    _crash: bool = False,
) -> list[tuple[int, str]]:
    """Firings (account, rule id), sorted, from durable-rules running in `workers` child processes."""
    shards = compile_rules(rules_file)
    payloads = [(account, encode_fact(account, facts)) for account, facts in facts_by_account]
    if not payloads:
        return []
    chunks = [payloads[i : i + chunk_size] for i in range(0, len(payloads), chunk_size)]
    import multiprocessing

    try:
        with ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(chunks))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_worker,
            initargs=(shards, _crash),
        ) as pool:
            results = list(pool.map(_evaluate_chunk, chunks))
    except BrokenProcessPool:
        raise EngineCrashed(
            "the durable-rules engine crashed in a worker process; the run was abandoned and nothing was written"
        ) from None
    except Exception as exc:  # durable-rules reports rule/fact errors as plain exceptions
        raise EngineCrashed(f"the durable-rules engine failed: {exc}") from None
    return sorted(f for result in results for f in result)
