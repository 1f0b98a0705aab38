"""A trial run of a rules file through the durable-rules engine, before it may be activated.

Some rules pass every static check and still cannot be evaluated: the engine fails the whole assert when one
account makes too many of its conditions true at once (error 303, research P12), refuses a ruleset, or its C core
crashes. A trial builds synthetic account facts that make as many conditions true as they can, and single-fact
variations of them, then runs them through the engine in a worker process: each rule alone, then each ruleset
shard as evaluation builds it. The firings must also agree with the plain evaluator. Every failure is a problem
naming the rule's id and line.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from pulsecheck.rules import durable
from pulsecheck.rules.conditions import BOOLEAN, NUMBER, STRING, Leaf, fact_type, leaves, normalize
from pulsecheck.rules.evaluator import evaluate_plain, test_leaf
from pulsecheck.rules.language import Rule, RulesFile

MAX_FACTS = 500  # synthetic accounts per case: the variations of the best one, beyond which more add little
Case = tuple[str, str, list[tuple[int, dict[str, Any]]]]  # (ruleset name, ruleset JSON, facts by account)


def satisfying(leaf: Leaf) -> list[Any]:
    """Values of the leaf's fact that make it true (None: the fact missing)."""
    kind, op, value = fact_type(leaf.fact), leaf.op, leaf.value
    if op == "missing":
        return [None]
    if op == "exists":
        return [{NUMBER: 0, STRING: "x", BOOLEAN: True}[kind or NUMBER]]
    if op in ("eq", "lte", "gte"):
        return [value]
    if op == "in":
        return list(value)
    if op == "between":
        return [value[0], value[1]]
    if op in ("lt", "gt"):
        return [value - 1 if op == "lt" else value + 1]
    others = [value] if op == "ne" else list(value)  # ne, not_in: something else
    if kind == NUMBER:
        return [max(others) + 1]
    if kind == BOOLEAN:
        return [not others[0]] if len(set(others)) == 1 else []
    return ["~".join(str(item) for item in others) + "~"]


def synthetic_facts(rules: Sequence[Rule]) -> list[dict[str, Any]]:
    """Account facts for a trial of `rules`: first the one making the most conditions true (fact by fact, the value
    that satisfies most of the conditions on it), then variations of it with one fact changed."""
    by_fact: dict[str, list[Leaf]] = {}
    for rule in rules:
        for leaf in leaves(normalize(rule.when)):
            by_fact.setdefault(leaf.fact, []).append(leaf)
    choices: dict[str, list[Any]] = {}
    for fact, conditions in by_fact.items():
        values = list(dict.fromkeys(v for leaf in conditions for v in satisfying(leaf))) + [None]
        values.sort(key=lambda v: -sum(test_leaf(leaf, {fact: v}) for leaf in conditions))  # stable: ties keep order
        choices[fact] = values
    best = {fact: values[0] for fact, values in choices.items()}
    found = [best]
    for fact, values in choices.items():
        found.extend({**best, fact: value} for value in values[1:])
    return [{k: v for k, v in facts.items() if v is not None} for facts in found[:MAX_FACTS]]


def cases(rules_file: RulesFile) -> tuple[list[Case], list[list[Rule]]]:
    """What a trial runs: each rule alone, then each shard of more than one rule; with the rules of each case."""
    found: list[Case] = []
    members: list[list[Rule]] = []
    for rule in rules_file.rules:
        facts = list(enumerate(synthetic_facts([rule]), 1))
        found.append((f"trial:{rule.id}", durable.compile_alone(rule), facts))
        members.append([rule])
    shards = durable.shard_rules(rules_file)
    for shard, (name, ruleset) in zip(shards, durable.compile_rules(rules_file), strict=True):
        if len(shard) > 1:
            found.append((f"trial:{name}", ruleset, list(enumerate(synthetic_facts(shard), 1))))
            members.append(shard)
    return found, members


def trial(rules_file: RulesFile) -> list[str]:
    """Run the rules through the engine on synthetic accounts; one `file:line: rule <id>: ...` per problem.
    The outcome depends on the file alone: a file tried once in this process is not tried again."""
    if not rules_file.sha256:  # not read from a text: nothing to know it by
        return _trial(rules_file)
    key = (rules_file.sha256, rules_file.source)
    if key not in _TRIED:
        _TRIED[key] = _trial(rules_file)
    return list(_TRIED[key])


_TRIED: dict[tuple[str, str], list[str]] = {}


def _trial(rules_file: RulesFile) -> list[str]:
    if not rules_file.rules:
        return []
    todo, members = cases(rules_file)
    results = _run(todo)
    problems: list[str] = []
    failed: set[str] = set()
    for (_, _, facts), rules, result in zip(todo, members, results, strict=True):
        if len(rules) > 1 and failed & {rule.id for rule in rules}:
            continue  # already reported rule by rule
        problem = _judge(rules, facts, result)
        if problem:
            failed |= {rule.id for rule in rules}
            problems.append(f"{rules_file.source}:{rules[0].line}: {problem}")
    return problems


def _judge(rules: list[Rule], facts: list[tuple[int, dict[str, Any]]], result: list[tuple[int, str]] | str) -> str:
    """What is wrong with one case's result, or '' when nothing is."""
    which = f"rule {rules[0].id}" if len(rules) == 1 else "rules " + ", ".join(rule.id for rule in rules)
    if isinstance(result, str):
        if "303" in result:
            why = (
                "more of its conditions are true at once for one account than the engine can handle (error 303): "
                "split its any/in alternatives over several rules"
            )
            return f"{which}: the durable-rules engine cannot evaluate {'it' if len(rules) == 1 else 'them'}: {why}"
        return f"{which}: the durable-rules engine cannot evaluate it: {result}"
    expected = evaluate_plain(rules, facts)
    if result != expected:
        account = next(a for a in sorted({a for a, _ in set(result) ^ set(expected)}))
        return (
            f"{which}: the durable-rules engine and the plain evaluator disagree on the synthetic facts "
            f"{dict(facts)[account]}: engine {sorted(r for a, r in result if a == account)}, "
            f"plain {sorted(r for a, r in expected if a == account)}"
        )
    return ""


def _run(todo: list[Case]) -> list[list[tuple[int, str]] | str]:
    """The cases in one worker process; if the C core crashes it, each case again in a process of its own, so the
    crash is pinned on the case that causes it."""
    try:
        return _in_worker(todo)
    except BrokenProcessPool:
        pass
    try:
        _in_worker([])
    except BrokenProcessPool:  # not the rules: a worker process cannot even start here
        raise durable.EngineCrashed("the durable-rules engine cannot run: its worker process dies at start") from None
    results: list[list[tuple[int, str]] | str] = []
    for case in todo:
        try:
            results.extend(_in_worker([case]))
        except BrokenProcessPool:
            results.append("the engine crashed (its worker process died)")
    return results


def _in_worker(todo: list[Case]) -> list[list[tuple[int, str]] | str]:
    context = multiprocessing.get_context("spawn")
    parent = (os.getpid(),)
    with ProcessPoolExecutor(1, mp_context=context, initializer=durable.die_with_parent, initargs=parent) as pool:
        return pool.submit(durable.trial_cases, todo).result()
