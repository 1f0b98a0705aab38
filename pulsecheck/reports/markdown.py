"""Data written into Markdown as text: no HTML tag, link, code span or heading can come out of a value.

Markdown passes raw HTML through (`<script>` in an account name would reach whoever renders the export) and
gives meaning to `|`, `[`, backticks and a leading `#`; every data field of an export goes through `md_escape`."""

from __future__ import annotations

import re
from typing import Any

from pulsecheck.reports.html import http_link
from pulsecheck.safetext import strip_controls

_INLINE = re.compile(r"([\\`\[\]|])")  # code spans, links and images, table cells; `\` first so escapes stay
_ENTITY = re.compile(r"&(?=#?\w+;)")  # `&lt;` typed as data stays the five characters it was
# What makes a line a heading, quote, list item, fence, rule or setext underline when it starts one.
_LEADING = re.compile(r"^([ \t]*)([#>+*=~-]|\d+(?=[.)]))", re.MULTILINE)


def md_escape(value: Any, *, block: bool = False) -> str:
    """`value` as Markdown text that reads as itself. Inline (the default): one line, whitespace collapsed.
    `block=True`: lines kept, and a line that would start a heading, list, quote or fence is escaped."""
    if value is None:
        return ""
    text = strip_controls(str(value))
    text = _ENTITY.sub("&amp;", text).replace("<", "&lt;").replace(">", "&gt;")
    text = _INLINE.sub(r"\\\1", text)
    if not block:
        return " ".join(text.split())
    return _LEADING.sub(lambda m: f"{m[1]}{m[2]}\\" if m[2][0].isdigit() else f"{m[1]}\\{m[2]}", text)


def md_cell(value: Any) -> str:
    """A Markdown table cell: `md_escape`d on one line, a list joined by `; `, `-` when empty."""
    if value is None or value == "":
        return "-"
    if isinstance(value, list | tuple):
        return "; ".join(md_cell(item) for item in value) or "-"
    return md_escape(value) or "-"


def md_link(value: Any) -> str:
    """An http(s) URL as a Markdown autolink `<url>`; anything else (a path, `javascript:`) as escaped text."""
    url = http_link(value)
    if url is not None and "<" not in url and ">" not in url:
        return f"<{url}>"
    return md_escape(value)
