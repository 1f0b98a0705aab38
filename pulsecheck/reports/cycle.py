"""A review cycle's archive: Markdown, JSON or one self-contained HTML file (Jinja2 templates cycle.*.j2)."""

from __future__ import annotations

from datetime import tzinfo
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulsecheck.errors import InputError
from pulsecheck.jsontext import readable_json
from pulsecheck.reports.markdown import md_cell, md_escape, md_link

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).parent / "templates"
FORMATS = ("md", "json", "html")


@cache
def _environment(html: bool) -> Environment:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from pulsecheck.reports.compiled import bytecode_cache
    from pulsecheck.reports.html import html_environment

    if html:
        return html_environment(keep_trailing_newline=True)
    settings: dict[str, Any] = {"autoescape": False, "trim_blocks": False, "keep_trailing_newline": True}
    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), undefined=StrictUndefined,
                      bytecode_cache=bytecode_cache("markdown", settings), **settings)
    env.filters["cell"] = md_cell
    env.filters["md"] = md_escape
    env.filters["md_link"] = md_link
    env.tests["search"] = lambda value, text: text in value
    return env


def cycle_markdown(data: dict[str, Any], tz: tzinfo | None = None) -> str:
    """Markdown of `workflow.cycles.views.cycle_dict` (the short form for `show`, the full one for `export`); with
    `tz`, times read in that zone to the minute (what a person reads), else as stored (ISO, UTC: an archive)."""
    def when(value: Any) -> Any:
        if tz is None or not value:
            return value
        from pulsecheck.humanize import when as local

        return local(value, tz)

    text = _environment(False).get_template("cycle.md.j2").render(c=data, when=when)
    return "\n".join(line.rstrip() for line in text.splitlines()).rstrip() + "\n"


def cycle_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, no script, nothing fetched) of `cycle_dict(..., full=True)`."""
    from pulsecheck.reports.html import content_security_policy

    return _environment(True).get_template("cycle.html.j2").render(c=data, csp=content_security_policy())


def cycle_json(data: dict[str, Any]) -> str:
    """The JSON archive of a cycle, in the readable form of every `--json`."""
    return readable_json(data) + "\n"


def render(data: dict[str, Any], fmt: str) -> str:
    """The archive in `fmt` (md, json or html)."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    return {"md": cycle_markdown, "json": cycle_json, "html": cycle_html}[fmt](data)
