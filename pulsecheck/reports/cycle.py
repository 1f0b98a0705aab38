"""A review cycle's archive: Markdown, JSON or one self-contained HTML file (Jinja2 templates cycle.*.j2)."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulsecheck.errors import InputError
from pulsecheck.jsontext import readable_json

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).parent / "templates"
FORMATS = ("md", "json", "html")


def _cell(value: Any) -> str:
    """Text safe inside a Markdown table cell: one line, pipes escaped, '-' when empty."""
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return "; ".join(_cell(item) for item in value) or "-"
    return " ".join(str(value).split()).replace("|", "\\|")


def _href(link: str) -> str:
    """A link as given when it is a URL, else a file:// URI of the (absolute) path."""
    return link if "://" in link else Path(link).as_uri() if Path(link).is_absolute() else link


@cache
def _environment(html: bool) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    env = Environment(
        loader=FileSystemLoader(TEMPLATES_DIR),
        autoescape=html,
        undefined=StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    env.tests["search"] = lambda value, text: text in value
    env.filters["href"] = _href
    return env


def cycle_markdown(data: dict[str, Any]) -> str:
    """Markdown of `workflow.cycles.views.cycle_dict` (the short form for `show`, the full one for `export`)."""
    text = _environment(False).get_template("cycle.md.j2").render(c=data)
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip() + "\n"


def cycle_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, no script, nothing fetched) of `cycle_dict(..., full=True)`."""
    return _environment(True).get_template("cycle.html.j2").render(c=data)


def cycle_json(data: dict[str, Any]) -> str:
    """The JSON archive of a cycle, in the readable form of every `--json`."""
    return readable_json(data) + "\n"


def render(data: dict[str, Any], fmt: str) -> str:
    """The archive in `fmt` (md, json or html)."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    return {"md": cycle_markdown, "json": cycle_json, "html": cycle_html}[fmt](data)
