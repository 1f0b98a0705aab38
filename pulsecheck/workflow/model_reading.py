"""What the readers of a parsed scoring model share, with no database and no ORM: the group tree in display order
(the portfolio's group means and the scorecard's subscores list the groups alike)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pulsecheck.scoring.model import ScoringModel


def tree_order(model: ScoringModel) -> list[tuple[str, int]]:
    """(group, depth) for every group, parents before their children, siblings in model order."""
    children = {g.name: g.children for g in model.groups}
    child_names = {c for g in model.groups for c in g.children}
    ordered: list[tuple[str, int]] = []
    stack = [(g.name, 0) for g in reversed(model.groups) if g.name not in child_names]
    while stack:  # parse_model refuses cycles, so this ends
        name, depth = stack.pop()
        ordered.append((name, depth))
        stack.extend((c, depth + 1) for c in reversed(children.get(name, ())))
    return ordered
