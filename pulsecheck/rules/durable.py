"""Rules compiled to durable-rules JSON and evaluated through its C API in worker processes.

Follows shared/research/durable_rules.md sections 4 and 8: one `$and` pattern on the account fact per
rule, no events, `$not`, timers or Host threads; at most 50 rules (and ~60 `$or` branches) per ruleset;
a `$sentinel` rule so `delete_state` is safe; explicit fact ids; each sid is deleted after use.
Every number goes to the C core as a plain decimal: an exponent (`1e+17`) segfaults it in a fact and is
error 204 in a ruleset. A `$seen` rule fires once per account fact, so a fact the core silently dropped is
noticed and evaluated again. The C core can segfault, so it only ever runs in child processes: a crash
fails the run, never the caller.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from decimal import Decimal
from itertools import repeat
from typing import Any

from pulsecheck.errors import PulsecheckError
from pulsecheck.rules.conditions import BOOLEAN, PRECISION, All, AnyOf, Leaf, Node, fact_type, leaves, normalize
from pulsecheck.rules.evaluator import clean_facts
from pulsecheck.rules.language import Rule, RulesFile

MAX_RULES = 50
MAX_BRANCHES = 60  # P12: more than 64 simultaneously true alpha branches per fact fail the whole assert
SENTINEL = {"$sentinel": {"all": [{"m": {"$s": 1}}]}}
SEEN = {"$seen": {"all": [{"m": {"kind": "account"}}]}}  # one firing per account fact the core really took in
ACCOUNTS_PER_SID = 20
COLUMN_CACHE = 16_384  # texts kept per (fact, type) by `FactEncoder.encode_block`: a few MB at most
_HEAD = '{"id": "account:%d", "kind": "account"'
_CACHED = (float, int, str, bool)  # types whose equal values have one text (but 0.0 and -0.0)
RETRIES = 3
_OPS = {"ne": "$neq", "lt": "$lt", "lte": "$lte", "gt": "$gt", "gte": "$gte"}
_INT64 = 2**63
_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class EngineCrashed(PulsecheckError):
    """The durable-rules core died or misbehaved in a worker; nothing was written."""


def plain_number(value: int | float) -> str:
    """A number as JSON the C core parses: never an exponent; floats keep a '.' so they are read as doubles."""
    if isinstance(value, int) and -_INT64 < value < _INT64:
        return str(int(value))
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{value!r} is not a finite number")
    text = repr(number)
    if "e" not in text:
        return text
    text = format(Decimal(text), "f")
    return text if "." in text else f"{text}.0"


def to_json(value: Any) -> str:
    """JSON for durable-rules: like json.dumps, but every number is a plain decimal (see `plain_number`)."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, int | float):
        return plain_number(value)
    if isinstance(value, Mapping):
        return "{" + ", ".join(f"{json.dumps(str(k))}: {to_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ", ".join(to_json(v) for v in value) + "]"
    raise TypeError(f"cannot send {type(value).__name__} to durable-rules")


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
    """How many alpha branches of the engine a condition may make true at once (what P12 limits). The groups of
    an `all` add up: measured, one rule of `all: [any of 40, any of 30]` fails with error 303 like an `any` of 70,
    and so do two rules of `all: [any of 30, any of 30]` in one ruleset."""
    if isinstance(node, AnyOf):
        return sum(_branches(item) for item in node.items)
    if isinstance(node, All):
        return max(1, sum(_branches(item) for item in node.items if not isinstance(item, Leaf)))
    return 1


def compile_rule(rule: Rule) -> dict[str, Any]:
    """One rule as one pattern on the account fact."""
    return {"all": [{"m": {"$and": [{"kind": "account"}, compile_node(normalize(rule.when))]}}]}


def compile_alone(rule: Rule) -> str:
    """One rule as a ruleset of its own (JSON), as a trial runs it."""
    return to_json({rule.id: compile_rule(rule), **SEEN, **SENTINEL})


def shard_rules(rules_file: RulesFile) -> list[list[Rule]]:
    """The rules in shards of at most MAX_RULES rules and MAX_BRANCHES branches (a rule above that alone)."""
    shards: list[list[Rule]] = []
    weight = 0
    for rule in rules_file.rules:
        cost = _branches(normalize(rule.when))
        if not shards or len(shards[-1]) >= MAX_RULES or weight + cost > MAX_BRANCHES:
            shards.append([])
            weight = 0
        shards[-1].append(rule)
        weight += cost
    return shards


def compile_rules(rules_file: RulesFile) -> list[tuple[str, str]]:
    """Shards of (versioned ruleset name, ruleset JSON)."""
    stem = rules_file.source.rsplit("/", 1)[-1].split(".")[0] or "rules"
    return [
        (
            f"{stem}.{i}@{rules_file.sha256[:12]}",
            to_json({**{rule.id: compile_rule(rule) for rule in shard}, **SEEN, **SENTINEL}),
        )
        for i, shard in enumerate(shard_rules(rules_file))
    ]


def encode_fact(account: int, facts: Mapping[str, Any]) -> str:
    """The account fact as durable-rules sees it (JSON, without its sid): missing facts omitted, booleans as 0/1,
    numbers rounded and written as plain decimals."""
    fields: dict[str, Any] = {"id": f"account:{account}", "kind": "account"}
    plain = True  # json.dumps writes an exponent only from 1e16 up (rounded numbers are never tiny)
    for name, value in clean_facts(facts).items():
        if value is None:
            continue
        if isinstance(value, bool):
            value = int(value)
        elif isinstance(value, int | float) and not -1e15 < value < 1e15:
            plain = False
        fields[field_name(name)] = value
    return json.dumps(fields) if plain else to_json(fields)


class FactEncoder:
    """`encode_fact` compiled for one rules file: only the facts its rules read, each written straight into the
    JSON text with its key prepared once (no cleaned dict and no json.dumps per fact: that detour was 85% of the
    rules stage). The C core takes nothing but JSON text, so text is the cheapest form it accepts."""

    def __init__(self, names: Iterable[str]) -> None:
        self.fields = [(name, ", " + json.dumps(field_name(name)) + ": ") for name in sorted(set(names))]
        self.names = [name for name, _ in self.fields]
        self._strings: dict[str, str] = {}  # buckets, segments...: few distinct strings, each escaped once
        # (field, type) -> {value: its key and text}: a block's column is looked up in one pass (`encode_block`)
        self._columns: dict[tuple[str, type], dict[Any, str]] = {}

    @classmethod
    def of(cls, rules_file: RulesFile) -> FactEncoder:
        """The encoder of the facts `rules_file` reads."""
        return cls(leaf.fact for rule in rules_file.rules for leaf in leaves(normalize(rule.when)))

    def encode(self, account: int, facts: Mapping[str, Any]) -> str:
        """The same text as `encode_fact(account, facts)` restricted to the fields the rules read."""
        parts = [_HEAD % account]
        for name, key in self.fields:
            text = self._text(facts.get(name))
            if text is not None:
                parts.append(key)
                parts.append(text)
        parts.append("}")
        return "".join(parts)

    def encode_block(self, accounts: Sequence[tuple[int, Mapping[str, Any]]]) -> list[str]:
        """`encode` of each account, a column at a time: a field's values are read and typed by C-level passes
        over the block, and the text of a value met before is taken from a bounded cache (encoding one field of
        one account at a time cost as much as the C core's evaluation of the account)."""
        facts: list[Any] = [fact for _, fact in accounts]  # dicts: read by C-level `dict.get`
        if any(type(fact) is not dict for fact in facts):
            return [self.encode(account, fact) for account, fact in accounts]
        count = len(facts)
        columns: list[list[str]] = [[_HEAD % account for account, _ in accounts]]
        for name, key in self.fields:
            values = list(map(dict.get, facts, repeat(name, count)))
            kinds = set(map(type, values))
            kinds.discard(type(None))
            if not kinds:  # missing everywhere
                continue
            kind = kinds.pop()
            if kinds or kind not in _CACHED:  # mixed (1 == 1.0 == True as keys) or unusual types: no cache
                columns.append([self._field(key, value) for value in values])
                continue
            cache = self._columns.setdefault((name, kind), {None: ""})
            texts: list[Any] = list(map(cache.get, values))  # str, or None where the cache missed
            if None in texts:
                if len(cache) > COLUMN_CACHE:
                    cache.clear()
                    cache[None] = ""
                for index, text in enumerate(texts):
                    if text is None:
                        value = values[index]
                        texts[index] = self._field(key, value)
                        if value or kind is not float:  # 0.0 and -0.0 are equal keys with different texts
                            cache[value] = texts[index]
            columns.append(texts)
        columns.append(["}"] * count)
        return list(map("".join, zip(*columns, strict=True)))

    def _field(self, key: str, value: Any) -> str:
        """One field's part of the text: its key and value, or "" when the fact is missing."""
        text = self._text(value)
        return "" if text is None else key + text

    def _text(self, value: Any) -> str | None:
        """A fact's value as the C core reads it, or None when it is missing (None, NaN, an infinity)."""
        kind = type(value)  # exact type tests: bool is not int here
        if kind is float:
            if not math.isfinite(value):
                return None
            value = round(value, PRECISION)
            return repr(value) if -1e15 < value < 1e15 else plain_number(value)
        if kind is int:
            return str(value) if -1e15 < value < 1e15 else plain_number(value)
        if kind is str:
            return self._strings.get(value) or self._strings.setdefault(value, json.dumps(value))
        if kind is bool:
            return "1" if value else "0"
        if value is None:
            return None
        return to_json(clean_facts({"": value})[""])


# --- worker side -----------------------------------------------------------------------------------

_HANDLES: list[int] = []
_ENCODER: list[FactEncoder] = []  # the one encoder of the rules file this process evaluates
_ID_MARK = '"id": "account:'


def die_with_parent(parent: int) -> None:
    """Make this worker process die when `parent` does (a killed CLI must not leave workers computing).

    Linux: the kernel sends SIGKILL on the parent's death (prctl PR_SET_PDEATHSIG). Elsewhere a daemon thread
    watches the parent pid between chunks. A parent already gone by now is noticed at once."""
    import ctypes
    import signal
    import sys
    import threading

    armed = False
    if sys.platform.startswith("linux"):
        try:
            armed = ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
        except (OSError, AttributeError):
            armed = False
    if os.getppid() != parent:  # it died before the signal was armed
        os._exit(1)
    if not armed:

        def watch() -> None:
            while os.getppid() == parent:
                time.sleep(1.0)
            os._exit(1)

        threading.Thread(target=watch, name="parent watch", daemon=True).start()


def init_worker(shards: list[tuple[str, str]], parent: int | None = None, fields: Sequence[str] | None = None) -> None:
    """Worker start-up (the pool's initializer): die with `parent`, then create the rulesets in this process's
    C core; facts are encoded with only `fields` (the facts the rules read), or all of them when None."""
    import ctypes

    import durable_rules_engine as dre

    if parent is not None:
        die_with_parent(parent)
    try:  # P10: keep glibc from trimming the heap after every delete_state
        ctypes.CDLL("libc.so.6").mallopt(-1, 256 << 20)
    except OSError:
        pass
    _HANDLES.clear()
    _HANDLES.extend(dre.create_ruleset(name, text) for name, text in shards)
    _ENCODER[:] = [] if fields is None else [FactEncoder(fields)]


def _account_of(message: str) -> int:
    start = message.find(_ID_MARK)
    if start < 0:  # not the layout the C core writes today: parse it properly
        fact = next(iter(next(iter(json.loads(message).values())).values()))
        return int(str(fact["id"]).split(":", 1)[1])
    start += len(_ID_MARK)
    return int(message[start : message.index('"', start)])


def _run_sid(handle: int, sid: str, batch: list[tuple[int, str]]) -> tuple[set[tuple[int, str]], int]:
    """Assert a batch of account facts into one sid, then delete it: (firings, how many facts `$seen` saw)."""
    import durable_rules_engine as dre

    prefix = '{"sid": "' + sid + '", '
    fired: set[tuple[int, str]] = set()
    seen = 0
    _, state = dre.assert_facts(handle, "[" + ", ".join(prefix + body[1:] for _, body in batch) + "]")
    result = dre.start_action_for_state(handle, state)
    message = result[1] if result else None
    while message:
        rule = message[2 : message.index('"', 2)]
        if rule == "$seen":
            seen += 1
        elif rule != "$sentinel":
            fired.add((_account_of(message), rule))
        message = dre.complete_and_start_action(handle, state)
    dre.delete_state(handle, sid)
    return fired, seen


def evaluate_chunk(
    accounts: list[tuple[int, Mapping[str, Any]]], per_sid: int = ACCOUNTS_PER_SID
) -> list[tuple[int, str]]:
    """Firings for a chunk of accounts, every shard. When the core took in fewer facts than it was given
    (`$seen` count), the batch is evaluated again one account per sid."""
    if _ENCODER:
        chunk = list(zip([account for account, _ in accounts], _ENCODER[0].encode_block(accounts), strict=True))
    else:
        chunk = [(account, encode_fact(account, facts)) for account, facts in accounts]
    fired: set[tuple[int, str]] = set()
    for handle in _HANDLES:
        for start in range(0, len(chunk), per_sid):
            batch = chunk[start : start + per_sid]
            found, seen = _run_sid(handle, f"b{batch[0][0]}", batch)
            if seen == len(batch):
                fired |= found
            else:
                for item in batch:
                    fired |= _alone(handle, item)
    return sorted(fired)


def _alone(handle: int, item: tuple[int, str]) -> set[tuple[int, str]]:
    """One account fact in its own sid, again until the core takes it in."""
    for attempt in range(RETRIES):
        found, seen = _run_sid(handle, f"r{attempt}-{item[0]}", [item])
        if seen == 1:
            return found
    raise RuntimeError(f"it dropped the fact of account {item[0]} {RETRIES} times")


def trial_case(name: str, ruleset: str, facts: Sequence[tuple[int, Mapping[str, Any]]]) -> list[tuple[int, str]] | str:
    """In a worker: create the ruleset and evaluate each fact in a sid of its own; the firings, or what the engine
    said when it failed (a trial of a rules file before it is activated: `rules.trial`)."""
    import durable_rules_engine as dre

    try:
        handle = dre.create_ruleset(name, ruleset)
    except Exception as exc:  # noqa: BLE001 - durable-rules raises plain exceptions with its error code
        return f"the engine refuses its ruleset: {exc}"
    fired: set[tuple[int, str]] = set()
    try:
        for account, fact in facts:
            found, seen = _run_sid(handle, f"t{account}", [(account, encode_fact(account, fact))])
            if seen != 1:
                return f"the engine dropped the fact of synthetic account {account}"
            fired |= found
    except Exception as exc:  # noqa: BLE001 - as above
        return str(exc)
    finally:
        dre.delete_ruleset(handle)
    return sorted(fired)


def trial_cases(
    cases: Sequence[tuple[str, str, Sequence[tuple[int, Mapping[str, Any]]]]],
) -> list[list[tuple[int, str]] | str]:
    """In a worker: `trial_case` for each (name, ruleset JSON, facts)."""
    return [trial_case(name, ruleset, facts) for name, ruleset, facts in cases]


def evaluate(
    rules_file: RulesFile,
    facts_by_account: Iterable[tuple[int, Mapping[str, Any]]],
    workers: int = 2,
    chunk_size: int = 2000,
    per_sid: int = ACCOUNTS_PER_SID,
    progress: Callable[[int], None] | None = None,
) -> list[tuple[int, str]]:
    """Firings (account, rule id), sorted, from durable-rules running in `workers` child processes;
    `progress(n)` is called as each chunk of n accounts is done."""
    shards = compile_rules(rules_file)
    payloads = list(facts_by_account)
    if not payloads:
        return []
    chunks = [payloads[i : i + chunk_size] for i in range(0, len(payloads), chunk_size)]
    import multiprocessing

    try:
        with ProcessPoolExecutor(
            max_workers=max(1, min(workers, len(chunks))),
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker,
            initargs=(shards, os.getpid(), FactEncoder.of(rules_file).names),
        ) as pool:
            results = []
            for chunk, result in zip(chunks, pool.map(evaluate_chunk, chunks, [per_sid] * len(chunks)), strict=True):
                results.append(result)
                if progress is not None:
                    progress(len(chunk))
    except BrokenProcessPool:
        raise EngineCrashed(
            "the durable-rules engine crashed in a worker process; the run was abandoned and nothing was written"
        ) from None
    except Exception as exc:  # durable-rules reports rule/fact errors as plain exceptions
        raise EngineCrashed(f"the durable-rules engine failed: {exc}; nothing was written") from None
    return sorted(f for result in results for f in result)
