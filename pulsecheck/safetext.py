"""Data made safe to print on a terminal: no control character, no escape sequence.

An account name or a note is typed by someone else; printed raw, `ESC ]` could retitle the terminal, hide text,
fake a hyperlink or, on some terminals, write to the clipboard. Only line feed and tab survive."""

from __future__ import annotations

import re
from functools import cache

# Whole escape sequences go (not only their ESC), so no stray `[31m` is left behind.
_SEQUENCE = (
    r"""
      \x1b\[[0-?]*[ -/]*[@-~]?              # CSI: colours, cursor moves, erase
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?   # OSC: window title, hyperlink, clipboard
    | \x1b[PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?        # DCS, SOS, PM, APC strings
    | \x1b[ -/]*[0-~]?                      # any other ESC sequence, or a lone ESC
    | \x9b[0-?]*[ -/]*[@-~]?                # CSI in its 8-bit (C1) form
    """
)
_CONTROL = r"[\x00-\x08\x0b-\x1f\x7f-\x9f]"  # C0 but \t and \n, DEL, C1


@cache
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str]]:
    """Compiled on first use: a command that prints only JSON never compiles them."""
    return re.compile(_SEQUENCE, re.VERBOSE), re.compile(_CONTROL)


def strip_controls(text: str) -> str:
    """`text` without escape sequences and control characters (C0 except tab and line feed, DEL, C1)."""
    sequence, control = _patterns()
    return control.sub("", sequence.sub("", text))
