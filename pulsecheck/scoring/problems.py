"""Problems found while parsing a model file, collected so that every one is reported at once, by line."""

from __future__ import annotations

import math
from typing import Any

from pulsecheck.errors import ValidationFailed
from pulsecheck.scoring.model import canonical_number
from pulsecheck.yamlfile import LineDict, line_of, suggest


class Problems:
    """Collects `source:line: message` strings so that every problem is reported at once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.found: list[tuple[int, str]] = []

    def add(self, container: Any, key: str | int | None, message: str) -> None:
        """Record a problem at the line of `container[key]` (or of the container when key is None)."""
        self.found.append((max(1, line_of(container, key)), message))

    def fail_if_any(self) -> None:
        """Raise ValidationFailed with every problem, in file order."""
        if self.found:
            ordered = sorted(self.found, key=lambda problem: problem[0])
            raise ValidationFailed([f"{self.source}:{line}: {message}" for line, message in ordered])

    def unknown_keys(self, mapping: LineDict, allowed: tuple[str, ...], where: str) -> None:
        for key in mapping:
            if key not in allowed:
                self.add(mapping, key, f"{where}unknown key {key!r}{suggest(key, allowed)}")

    def choice(self, mapping: LineDict, key: str, choices: tuple[str, ...], label: str) -> str | None:
        """mapping[key] if it is one of `choices`, else record `unknown <label> 'x' (did you mean...)`."""
        value = mapping[key]
        if value in choices:
            return str(value)
        hint = suggest(value, choices) if isinstance(value, str) else ""
        expected = f"{', '.join(choices[:-1])} or {choices[-1]}"
        self.add(mapping, key, f"{label} {value!r}{hint}; expected {expected}")
        return None

    def once(self, seen: dict[str, int], name: Any, item: LineDict, label: str) -> None:
        """Record a duplicate when `name` was already seen; remember where it was first defined."""
        if not isinstance(name, str):
            return
        if name in seen:
            self.add(item, "name", f"duplicate {label} name {name!r} (first defined on line {seen[name]})")
        seen.setdefault(name, line_of(item, "name"))


def is_number(value: Any) -> bool:
    """A finite int or float (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def fmt(value: Any) -> str:
    """A number as the canonical form writes it, anything else as its repr."""
    return str(canonical_number(value)) if is_number(value) else repr(value)
