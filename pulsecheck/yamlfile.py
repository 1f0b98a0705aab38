"""YAML loading that remembers line numbers, so validators can say `rules.yaml:14: ...`, and that stays within
bounds: file size, nesting depth and the size of the document once aliases are expanded (a "billion laughs" of
500 bytes is refused at once), finite numbers only."""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from pulsecheck.errors import InputError
from pulsecheck.textfile import read_text

MAX_BYTES = 5 * 1024 * 1024  # models, rules and review forms are written by hand: a few KB
MAX_DEPTH = 64  # nesting of mappings and sequences, counting what aliases bring in
MAX_NODES = 1_000_000  # values in the document once every alias is expanded
MAX_INT_DIGITS = 30  # longer integer text is refused before int() works on it
INT64 = 2**63 - 1  # what the database and the rules engine hold


@dataclass(frozen=True)
class Limits:
    """The bounds of one load; the defaults are the module constants (settings may pass others)."""

    max_bytes: int = MAX_BYTES
    max_depth: int = MAX_DEPTH
    max_nodes: int = MAX_NODES


class LineDict(dict[str, Any]):
    """A mapping from YAML that knows the line of itself and of each key (1-based)."""

    line: int = 0
    key_lines: dict[str, int]


class LineList(list[Any]):
    """A sequence from YAML that knows its own line and the line of each item (1-based)."""

    line: int = 0
    item_lines: list[int]


class _Refused(Exception):
    """A problem at a line of the document; load_text names the source in front of it."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line


class _Loader(yaml.SafeLoader):
    """SafeLoader (never constructs Python objects) that records line numbers and refuses deep nesting while it
    composes (the composer recurses once per level)."""

    def __init__(self, stream: str, limits: Limits) -> None:
        super().__init__(stream)
        self.limits = limits
        self.depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        self.depth += 1
        try:
            if self.depth > self.limits.max_depth:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]  # PyYAML's stubs
                raise _Refused(mark.line + 1, f"nested deeper than {self.limits.max_depth} levels")
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> LineDict:
    result = LineDict()
    result.line = node.start_mark.line + 1
    result.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        if not isinstance(key, str | int | float | bool) and key is not None:
            raise _Refused(key_node.start_mark.line + 1, "mapping keys must be plain text")
        key = str(key)
        if key in result:
            raise _Refused(key_node.start_mark.line + 1, f"duplicate key {key!r}")
        result[key] = loader.construct_object(value_node, deep=True)
        result.key_lines[key] = key_node.start_mark.line + 1
    return result


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> LineList:
    result = LineList(loader.construct_object(child, deep=True) for child in node.value)
    result.line = node.start_mark.line + 1
    result.item_lines = [child.start_mark.line + 1 for child in node.value]
    return result


def _construct_float(loader: _Loader, node: yaml.ScalarNode) -> float:
    value = loader.construct_yaml_float(node)
    if not math.isfinite(value):  # .nan, .inf or 1e999: no rule, weight or threshold can mean these
        raise _Refused(node.start_mark.line + 1, f"{node.value!r} is not a finite number")
    return float(value)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    line = node.start_mark.line + 1
    if len(node.value) > MAX_INT_DIGITS:
        raise _Refused(line, f"integer {node.value[:20]}... has over {MAX_INT_DIGITS} digits")
    value = loader.construct_yaml_int(node)
    if not -INT64 <= value <= INT64:
        raise _Refused(line, f"integer {node.value} is out of range (at most {INT64})")
    return int(value)


def _unsupported(loader: _Loader, node: yaml.Node) -> Any:
    raise _Refused(node.start_mark.line + 1, f"YAML tag {node.tag.rsplit(':', 1)[-1]!r} is not supported")


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float)
_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)
for _tag in ("binary", "omap", "pairs", "set"):  # values no file of ours holds; refused rather than mistyped
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _unsupported)


def _measure(node: yaml.Node, limits: Limits, memo: dict[int, tuple[int, int]], open_: set[int]) -> tuple[int, int]:
    """(values, depth) of `node` with every alias expanded, computed once per distinct node, so a document whose
    aliases multiply it a billion-fold is measured, and refused, in a moment."""
    if isinstance(node, yaml.ScalarNode):
        return 1, 1
    key = id(node)
    if key in memo:
        return memo[key]
    line = node.start_mark.line + 1
    if key in open_:
        raise _Refused(line, "an alias refers to a node that contains it")
    open_.add(key)
    children = node.value if isinstance(node, yaml.SequenceNode) else [n for pair in node.value for n in pair]
    size, depth = 1, 0
    for child in children:
        child_size, child_depth = _measure(child, limits, memo, open_)
        size, depth = size + child_size, max(depth, child_depth)
        if size > limits.max_nodes:
            raise _Refused(line, f"over {limits.max_nodes:,} values once aliases are expanded")
        if depth >= limits.max_depth:
            raise _Refused(line, f"nested deeper than {limits.max_depth} levels once aliases are expanded")
    open_.discard(key)
    memo[key] = (size, depth + 1)
    return memo[key]


def load_text(text: str, source: str, limits: Limits = Limits()) -> Any:
    """Parse YAML (or JSON, a subset) text within `limits`; every error is an InputError naming source and,
    where it has one, the line."""
    if len(text) > limits.max_bytes:
        raise InputError(f"{source}: over the limit of {limits.max_bytes:,} bytes")
    loader = None
    try:
        loader = _Loader(text, limits)  # its reader refuses control characters at once
        node = loader.get_single_node()
        if node is None:
            return None
        _measure(node, limits, {}, set())
        return loader.construct_document(node)
    except _Refused as exc:
        raise InputError(f"{source}:{exc.line}: {exc}") from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{source}{line}: invalid YAML: {exc.problem}") from None
    except yaml.reader.ReaderError as exc:
        at = text.count("\n", 0, exc.position) + 1
        raise InputError(f"{source}:{at}: invalid YAML: character {exc.character:#06x} is not allowed") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: invalid YAML: {exc}") from None
    except ValueError as exc:  # e.g. an impossible date such as 2027-02-30
        raise InputError(f"{source}: invalid value: {exc}") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_file(path: str | Path, limits: Limits = Limits()) -> str:
    """The text of a YAML file: a regular file within the size limit, in UTF-8; errors name the file (and the
    offset of a byte that is not UTF-8)."""
    return read_text(path, limits.max_bytes)


def load_file(path: str | Path, limits: Limits = Limits()) -> Any:
    """Read and parse a YAML file within `limits`, naming it in every error."""
    return load_text(read_file(path, limits), str(path), limits)


def line_of(container: Any, key: str | int | None = None) -> int:
    """Best line number for a key of a LineDict, an item of a LineList, or the container itself."""
    if isinstance(container, LineDict) and isinstance(key, str):
        return container.key_lines.get(key, container.line)
    if isinstance(container, LineList) and isinstance(key, int) and 0 <= key < len(container.item_lines):
        return container.item_lines[key]
    return getattr(container, "line", 0)


def suggest(name: str, choices: Iterable[str]) -> str:
    """` (did you mean 'x'?)` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""
