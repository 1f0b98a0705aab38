"""The per-entry and per-row work of `audit verify`, over one share of the chain and of each audited table, so
that a large chain is re-checked by two processes at once (each share's hashes depend only on its own entries
and the stored hash of the entry before it).

Every entry and every row is still checked, by exactly one share: a share walks the entries with seq in
(`after`, `upto`] and also checks that the first entry beyond its range follows its last one (the link the
next share cannot see), and checks the rows with ids in its ranges against their latest entries.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, select

from pulsecheck.storage.chainscan import RowContent, entry_batches
from pulsecheck.storage.db import engine_of
from pulsecheck.storage.entries import AUDITED, BY_KIND, GENESIS, Audited, entry_hash
from pulsecheck.storage.tables import AUDIT_CHAIN
from pulsecheck.workflow.signoffs import Signed

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_SEQ = AUDIT_CHAIN.c.seq

PARALLEL_FROM = 200_000  # entries: below this, a second process costs more than it saves


@dataclass(frozen=True)
class Problem:
    """One thing the chain or a row says that it should not: where, and what."""

    where: str  # "audit entry 17" or "review 3"
    what: str

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass(frozen=True)
class Share:
    """The entries (seq in (`after`, `upto`]) and rows (ids per kind) one process checks; None: no upper end."""

    after: int = 0
    upto: int | None = None
    rows: dict[str, tuple[int, int | None]] = field(default_factory=dict)  # kind -> (after, upto) of ids


@dataclass
class Found:
    """What one share found: the entries walked up to its first broken link (and that link), the signed entries
    met, and the rows checked with their problems by kind, in id order."""

    entries: int = 0
    broken: tuple[int, Problem] | None = None
    signed: list[Signed] = field(default_factory=list)
    records: int = 0
    rows: dict[str, list[Problem]] = field(default_factory=dict)


def _link(seq: int, prev_hash: str, expected_seq: int, prev: str) -> str | None:
    if seq != expected_seq:
        return f"entry {expected_seq} is missing (deleted or renumbered)"
    if prev_hash != prev:
        return "does not follow the entry before it (inserted or reordered)"
    return None


def walk(session: Session | Connection, share: Share, found: Found) -> None:
    """Check each entry of the share in chain order (its number, its link to the entry before, its hash, its
    kind), and the link of the first entry beyond it; stop at the first problem."""
    expected: tuple[int, str] | None = (1, GENESIS)
    if share.after:
        anchor = session.scalar(select(AUDIT_CHAIN.c.hash).where(_SEQ == share.after))
        # The entry before the share is the previous share's: if it is gone, that share names the gap.
        expected = (share.after + 1, anchor) if anchor is not None else None
    upto = share.upto
    for batch in entry_batches(session, share.after):
        for seq, prev_hash, kind, record_id, content, linked, actor, signer_key, signature in batch:
            what = None if expected is None else _link(seq, prev_hash, *expected)
            if what is None and upto is not None and seq > upto:
                return  # beyond the share: its own hash is the next share's to check
            if what is None and entry_hash(seq, prev_hash, kind, record_id, content, actor, signer_key) != linked:
                what = f"modified: its {kind} {record_id} content changed"
            if what is None and kind not in BY_KIND:
                what = f"unknown kind {kind!r}"
            found.entries += 1
            if what is not None:
                found.broken = (seq, Problem(f"audit entry {seq}", what))
                return
            if signer_key is not None or signature is not None:
                found.signed.append(Signed(seq, kind, record_id, content, actor, prev_hash, signature, signer_key))
            expected = (seq + 1, linked)


def check_rows(session: Session | Connection, kind: str, after: int, upto: int | None, found: Found) -> None:
    """Every row of `kind`'s table with an id in (`after`, `upto`] agrees with its latest entry; a row the chain
    does not know is a problem when every row of its kind must be chained."""
    spec = BY_KIND[kind]
    reader = RowContent.of(spec, engine_of(session).dialect)
    rendered = reader.in_sql()
    if rendered is not None:  # SQLite compares the rows it can; the rest, and any mismatch, are checked here
        try:
            problems = _problems(spec, reader, reader.suspects(session, rendered, after, upto))
        except reader.dialect.loaded_dbapi.Error:  # a blob where text belongs: json_object refuses it
            rendered = None
        else:
            found.records += reader.count(session, after, upto)
    if rendered is None:
        counted: list[int] = []
        problems = _problems(spec, reader, reader.batches(session, after, upto), counted)
        found.records += sum(counted)
    found.rows.setdefault(kind, []).extend(problems)


def _problems(
    spec: Audited, reader: RowContent, batches: Iterable[Sequence[tuple[Any, ...]]], counted: list[int] | None = None
) -> list[Problem]:
    problems = []
    for batch in batches:
        if counted is not None:
            counted.append(len(batch))
        for row in batch:  # the fields, the latest entry's content, the id
            recorded = row[-2]
            if recorded is None:
                if spec.always:
                    problems.append(Problem(f"{spec.kind} {row[-1]}", "not in the audit chain (written around it)"))
            elif _differs(reader, row, recorded):
                problems.append(Problem(f"{spec.kind} {row[-1]}", "differs from its audit chain entry"))
    return problems


def _differs(reader: RowContent, row: Sequence[Any], recorded: str) -> bool:
    """Whether a raw row's content is not `recorded`: the fast way, then SQLAlchemy's own; a value neither can
    read (a date-time that is no moment, bytes where text belongs) is not what the product wrote."""
    try:
        if reader.content(row) == recorded:
            return False
    except (ValueError, TypeError):
        pass
    try:
        return reader.exact_content(row) != recorded
    except (ValueError, TypeError):
        return True


def scan(session: Session | Connection, share: Share) -> Found:
    """Walk the share's entries and check its rows (every audited kind when the share names none)."""
    found = Found()
    walk(session, share, found)
    for spec in AUDITED:
        after, upto = share.rows.get(spec.kind, (0, None))
        check_rows(session, spec.kind, after, upto, found)
    return found


def shares(session: Session | Connection, count: int) -> list[Share]:
    """The chain and every audited table cut into `count` shares of about equal ranges of seq and id."""
    if count <= 1:
        return [Share()]
    last_seq = session.scalar(select(func.max(_SEQ))) or 0
    last_ids = {spec.kind: session.scalar(select(func.max(spec.table.c.id))) or 0 for spec in AUDITED}

    def cuts(last: int) -> list[tuple[int, int | None]]:
        points = [last * n // count for n in range(count)]
        return [(points[n], points[n + 1] if n + 1 < count else None) for n in range(count)]

    seqs = cuts(last_seq)
    ids = {kind: cuts(last) for kind, last in last_ids.items()}
    return [Share(seqs[n][0], seqs[n][1], {kind: ids[kind][n] for kind in ids}) for n in range(count)]


def workers_for(session: Session | Connection) -> int:
    """How many processes `audit verify` uses: two on a machine with two or more cores for a large chain on a
    database file or server another process can open, else one."""
    import multiprocessing  # here: a command that shows one review's chain status forks nothing
    import os

    if (os.cpu_count() or 1) < 2 or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    url = engine_of(session).url
    if url.get_backend_name() == "sqlite" and (url.database or ":memory:") == ":memory:":
        return 1
    last_seq = session.scalar(select(func.max(_SEQ))) or 0
    return 2 if last_seq >= PARALLEL_FROM else 1


def scan_all(session: Session | Connection, parts: list[Share]) -> list[Found]:
    """`scan` of each share: the first here, the others each in a forked process with its own connection (and
    its own read transaction: every entry and row a share checks is read in one snapshot)."""
    if len(parts) == 1:
        return [scan(session, parts[0])]
    import multiprocessing

    engine = engine_of(session)
    context = multiprocessing.get_context("fork")
    children = []
    for part in parts[1:]:
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_child, args=(engine, part, sender.send), daemon=True)
        child.start()
        sender.close()
        children.append((child, receiver))
    try:
        mine = scan(session, parts[0])
        results = [mine]
        for child, receiver in children:
            try:
                outcome, value = receiver.recv()
            except EOFError:
                raise RuntimeError(f"audit verify: a worker process died (exit code {child.exitcode})") from None
            if outcome != "ok":
                raise RuntimeError(f"audit verify: a worker process failed: {value}")
            results.append(value)
        return results
    finally:
        for child, receiver in children:
            receiver.close()
            child.join(timeout=5)
            if child.is_alive():
                child.kill()


def _child(engine: Engine, part: Share, send: Callable[[Any], None]) -> None:
    """In a forked process: drop the parent's pooled connections unclosed (they are the parent's), scan the
    share on a new one, and send back what it found."""
    engine.dispose(close=False)
    try:
        with engine.connect() as connection:
            send(("ok", scan(connection, part)))
    except BaseException as exc:  # noqa: BLE001 - the parent reports it
        send(("error", f"{type(exc).__name__}: {exc}"))
