"""What a command needs of the settings when no layer sets a section: the top-level keys, all text, and their
defaults, known without the typed models. Importing pydantic and building the section classes is a fifth of a
read command's start-up (issue 17), so `sections.py` is imported only when a command reads a section or a layer
sets one. tests/unit/test_config.py checks these against `sections.SettingsFile`.
"""

import re
from typing import Any

DEFAULT_DB = "sqlite:///pulsecheck.db"
# The top-level keys (every other key is a section): text, with their defaults.
TOP_LEVEL = {"database_url": DEFAULT_DB, "timezone": "UTC"}
# Top-level keys typed plain `str` (no constraint, no validator): text for them needs no validation.
PLAIN_TEXT = frozenset({"database_url"})

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)\s*([KMG]?B|bytes)?$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 1024, "mb": 1024**2, "gb": 1024**3}


def byte_size(value: Any) -> int:
    """A byte count: an integer, or text like 512KB, 10MB, 1.5GB (powers of 1024)."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError(f"expected a size like 10MB or a number of bytes, got {value!r}")
    if isinstance(value, int):
        size = value
    else:
        match = _SIZE.match(value.strip())
        if match is None:
            raise ValueError(f"expected a size like 512KB, 10MB or 1GB, got {value!r}")
        size = int(float(match.group(1)) * _UNITS[(match.group(2) or "").lower()])
    if size <= 0:
        raise ValueError("must be more than 0 bytes")
    return size
