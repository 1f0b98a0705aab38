"""A stored file sent to the browser: always as a download (never rendered in this origin), under a file name
that cannot break the header, with the content type its name says unless that type is one a browser would run
(HTML, SVG, XML, script), which goes as plain bytes."""

from __future__ import annotations

import mimetypes
import re
from urllib.parse import quote

from fastapi.responses import Response

OCTETS = "application/octet-stream"
ACTIVE = frozenset(
    {
        "text/html",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "text/javascript",
        "application/javascript",
        "application/x-javascript",
        "text/xsl",
    }
)
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def content_type(filename: str) -> str:
    """The media type of a file by its name; anything unknown, or active in a browser, as octet-stream."""
    guessed, _ = mimetypes.guess_type(filename, strict=False)
    return OCTETS if guessed is None or guessed in ACTIVE else guessed


def disposition(filename: str, fallback: str = "download") -> str:
    """`attachment` with an ASCII fallback name (letters, digits, `._-` only) and the exact name UTF-8 encoded."""
    ascii_name = _UNSAFE.sub("_", filename).strip("._") or fallback
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


def download(content: bytes, filename: str, media_type: str | None = None) -> Response:
    """The response that downloads `content` as `filename`."""
    return Response(
        content,
        media_type=media_type or content_type(filename),
        headers={"Content-Disposition": disposition(filename), "X-Content-Type-Options": "nosniff"},
    )
