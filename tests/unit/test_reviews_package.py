"""`pulsecheck.workflow.reviews` gives its names on first use (PEP 562): each name the package declares for the
type checker is one it gives at run time, the very object of the module it lives in."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

from pulsecheck.workflow import reviews


def _typed_names() -> dict[str, str]:
    """The names the package's `if TYPE_CHECKING:` block imports, by module."""
    tree = ast.parse(Path(reviews.__file__).read_text(encoding="utf-8"))
    block = next(node for node in tree.body if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING")
    return {alias.name: node.module or "" for node in block.body if isinstance(node, ast.ImportFrom)
            for alias in node.names}


def test_every_name_for_the_type_checker_is_given_at_run_time_from_its_module() -> None:
    typed = _typed_names()
    assert typed  # the block was found
    for name, module in typed.items():
        assert getattr(reviews, name) is getattr(importlib.import_module(module), name), name


def test_an_unknown_name_is_an_attribute_error() -> None:
    try:
        reviews.no_such_name  # noqa: B018 - the access is the test
    except AttributeError as exc:
        assert "no_such_name" in str(exc)
    else:
        raise AssertionError("no AttributeError")
