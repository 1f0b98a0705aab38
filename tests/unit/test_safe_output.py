"""Safe output, the pure parts: model colours, terminal text, Markdown text, links and the page policy."""

from __future__ import annotations

import base64
import hashlib

import pytest
from markdown_it import MarkdownIt

from pulsecheck.errors import ValidationFailed
from pulsecheck.reports.html import content_security_policy, http_link, without_scripts
from pulsecheck.reports.markdown import md_cell, md_escape, md_link
from pulsecheck.safetext import strip_controls
from pulsecheck.scoring.colors import is_color, safe_color
from pulsecheck.scoring.schema import parse_model

MODEL = """\
version: "1"
kpis:
  - {name: usage, weight: 100, scale: {min: 0, max: 100}}
buckets:
  - {name: low, below: 50, color: COLOR}
  - {name: high, color: blue}
"""


@pytest.mark.parametrize(
    ("color", "valid"),
    [
        ("orange", True),
        ("Orange", True),
        ("rebeccapurple", True),
        ("#c0392b", True),
        ("#C0392B", True),
        ("#fff", True),
        ("#ffff", False),  # #rgba is CSS, but not one of the two forms a model may use
        ("#ggg", False),
        ("#fff\n", False),
        ("orange;background-image:url(http://127.0.0.1:9/x)", False),
        ("url(http://example.com/x.png)", False),
        ("rgb(1,2,3)", False),
        ("red }  body { display:none", False),
        ("notacolour", False),
        ("", False),
    ],
)
def test_a_colour_is_a_hex_triple_or_a_css_name(color: str, valid: bool) -> None:
    assert is_color(color) is valid
    assert safe_color(color, "gray") == (color if valid else "gray")


def test_a_model_with_a_css_injection_colour_is_refused_naming_file_and_line() -> None:
    text = MODEL.replace("COLOR", '"orange;background-image:url(http://127.0.0.1:9/x)"')
    with pytest.raises(ValidationFailed) as info:
        parse_model(text, "models/live.yaml")
    assert info.value.problems == [
        "models/live.yaml:5: bucket 'low': color 'orange;background-image:url(http://127.0.0.1:9/x)' must be "
        "#rrggbb, #rgb or a CSS colour name (like orange)"
    ]


def test_a_model_with_plain_colours_parses() -> None:
    model = parse_model(MODEL.replace("COLOR", '"#e67e22"'), "m.yaml")
    assert [b.color for b in model.buckets] == ["#e67e22", "blue"]


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("Acme\x1b[31m Corp\x1b[0m", "Acme Corp"),  # colours
        ("Acme\x1b]0;owned\x07", "Acme"),  # window title (OSC ended by BEL)
        ("\x1b]8;;https://evil.example\x1b\\Acme\x1b]8;;\x1b\\", "Acme"),  # a disguised hyperlink
        ("\x1b]52;c;ZWNobyBvd25lZA==\x07x", "x"),  # clipboard write
        ("Acme\x1b[2J\x1b[H", "Acme"),  # clear screen, cursor home
        ("A\x9b31mB", "AB"),  # 8-bit CSI
        ("A\x85B\x7fC", "ABC"),  # C1 NEL and DEL
        ("a\rb\x08c\x00d\x07e", "abcde"),  # carriage return (overwrites the line), backspace, NUL, BEL
        ("two\nlines\tand a tab", "two\nlines\tand a tab"),
        ("Zürich · 東京 ✓", "Zürich · 東京 ✓"),
        ("trailing ESC\x1b", "trailing ESC"),
    ],
)
def test_terminal_text_loses_every_control_character(raw: str, shown: str) -> None:
    assert strip_controls(raw) == shown


def render(markdown: str) -> str:
    return MarkdownIt("commonmark").enable("table").render(markdown)


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        '<img src=x onerror="alert(1)">',
        "[click](javascript:alert(1))",
        "![x](http://127.0.0.1:9/pixel.png)",
        "<http://127.0.0.1:9/autolink>",
        "`code` and ``more``",
        "&lt;script&gt;",
        "\\<script>",
    ],
)
def test_markdown_text_renders_as_the_text_it_was(hostile: str) -> None:
    html = render(f"Name: {md_escape(hostile)}\n")
    assert "<script" not in html and "<img" not in html and "<a " not in html and "<code" not in html
    plain = html.removeprefix("<p>Name: ").removesuffix("</p>\n")
    # What a reader sees is the value itself (HTML-escaped once by the renderer, as any text).
    assert plain.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&") == hostile


def test_markdown_block_text_cannot_start_structure() -> None:
    text = "# not a heading\n- not a list\n1. not numbered\n> not a quote\n```\nnot code\n```\n---"
    html = render(md_escape(text, block=True) + "\n")
    for tag in ("<h1", "<h2", "<ul", "<ol", "<blockquote", "<pre", "<hr"):
        assert tag not in html, html
    assert html.count("<p>") == 1 and "# not a heading" in html


def test_a_table_cell_stays_one_cell() -> None:
    row = "| " + " | ".join(md_cell(value) for value in ("a | b", "line\none", None)) + " |"
    html = render("| x | y | z |\n|---|---|---|\n" + row + "\n")
    assert html.count("<td>") == 3
    assert "<td>a | b</td>" in html and "<td>line one</td>" in html and "<td>-</td>" in html


@pytest.mark.parametrize(
    ("link", "href"),
    [
        ("https://wiki.example.com/c1", "https://wiki.example.com/c1"),
        ("HTTP://example.com", "HTTP://example.com"),
        ("javascript://%0aalert(document.domain)", None),
        ("JavaScript:alert(1)", None),
        ("data:text/html,<script>alert(1)</script>", None),
        ("file:///etc/passwd", None),
        ("/tmp/export.csv", None),
        ("https://", None),  # no host
        ("https://ex ample.com", None),
        ("java\tscript:alert(1)", None),
        (" https://example.com", None),
    ],
)
def test_only_http_urls_become_links(link: str, href: str | None) -> None:
    assert http_link(link) == href
    rendered = render(md_link(link) + "\n")
    if href:
        assert f'<a href="{href}">' in rendered
    else:
        assert "<a " not in rendered


def test_the_policy_allows_exactly_the_hashed_scripts() -> None:
    script = "document.title = 'x';\n"
    digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
    assert content_security_policy() == "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    policy = content_security_policy([script])
    assert policy.endswith(f"; script-src 'sha256-{digest}'")
    assert "unsafe-inline'; img" in policy and policy.count("unsafe-inline") == 1  # styles only


def test_chart_scripts_are_removed() -> None:
    svg = '<svg><defs><script type="text/javascript">window.pygal = {};</script></defs><g>x</g></svg>'
    assert without_scripts(svg) == "<svg><defs></defs><g>x</g></svg>"
