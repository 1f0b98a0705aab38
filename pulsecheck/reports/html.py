"""What every generated HTML page shares: autoescaping Jinja2, a Content-Security-Policy, and filters that let
only plain colours into CSS and only http(s) URLs into links.

A report is opened from disk by someone other than the people who typed its data; the policy makes the page
inert (no script but the report's own, hashed; no request leaving the file) even if a value slipped through."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from pulsecheck.scoring.colors import safe_color

if TYPE_CHECKING:
    from jinja2 import Environment

TEMPLATES_DIR = Path(__file__).parent / "templates"
# Inline <style> and style="" only; no fetch of any kind (fonts, frames, images but data: ones), no script.
BASE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
_SCRIPT = re.compile(r"<script\b[^>]*>.*?</script\s*>", re.DOTALL | re.IGNORECASE)
_UNSAFE_IN_URL = re.compile(r"[\x00-\x20\x7f-\x9f]")


def content_security_policy(scripts: Iterable[str] = ()) -> str:
    """The policy for a page whose only scripts are `scripts` (each allowed by its SHA-256, never 'unsafe-inline')."""
    hashes = " ".join(f"'sha256-{_digest(script)}'" for script in scripts)
    return f"{BASE_POLICY}; script-src {hashes}" if hashes else BASE_POLICY


def _digest(script: str) -> str:
    return base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode("ascii")


def http_link(value: Any) -> str | None:
    """`value` when it is an http(s) URL with a host (fit for `href`), else None: the caller shows it as text."""
    if not isinstance(value, str) or _UNSAFE_IN_URL.search(value):
        return None
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:
        return None
    return value if parts.scheme.lower() in ("http", "https") and host else None


def without_scripts(svg: str) -> str:
    """SVG markup with its <script> elements removed (pygal embeds a config script that the policy would block)."""
    return _SCRIPT.sub("", svg)


def html_environment(**options: Any) -> Environment:
    """A Jinja2 environment for the HTML templates: autoescape on, strict undefined, the `color` and `http_link`
    filters; `options` go to Environment (trim_blocks...); compiled templates kept in the user's cache."""
    from jinja2 import Environment, FileSystemLoader, StrictUndefined

    from pulsecheck.reports.compiled import bytecode_cache

    env = Environment(loader=FileSystemLoader(TEMPLATES_DIR), autoescape=True, undefined=StrictUndefined,
                      bytecode_cache=bytecode_cache("html", options), **options)
    env.filters["color"] = safe_color
    env.filters["http_link"] = http_link
    return env
