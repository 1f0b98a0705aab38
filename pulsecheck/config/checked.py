"""Settings an earlier command validated, remembered so that the next one need not validate them again (issue 17).

Validating a settings file means importing pydantic, building the section models and, for a crontab line,
APScheduler's trigger: most of a read command's start-up in a directory with a `pulsecheck.toml`, every time,
though the file rarely changes. So the CLI remembers each merged set of layer values that passed (every check
`load_settings` makes of the values alone: types, bounds, unknown keys, roles), under the SHA-256 of the values
and of the code that checks them (ours and the libraries', by file size and time), with what it derived from them
(the names of the secret variables). When the same values come again, the command takes them as they are and
types a section only when it reads one. A record forged in the user's own cache directory could only delay a
refusal of bad values to the first read of their section, which still names the file and key.

A record is a file named by that digest in the user's cache directory (`~/.cache/pulsecheck/settings`, XDG
honoured), written atomically; the newest `KEEP` stay. Any change of a value, of a layer, of the variables, or of
pulsecheck's settings code is another digest: validated in full again. A cache that cannot be read or written
costs only the validation it would have saved.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

KEEP = 32  # records kept: one per settings file in use (a few), plus room for edits


def default_dir() -> Path:
    """Where the CLI keeps its records: the user's cache directory (platformdirs)."""
    import platformdirs

    return platformdirs.user_cache_path("pulsecheck") / "settings"


# What the checks are made of besides this package: the duration parser and the roles.
_OURS = ("timeutil.py", "vocab.py")
MAX_RECORD = 65536  # bytes: a record is a short list of variable names


def _canonical(value: Any) -> Any:
    """`value` with every table's keys sorted, so that the digest does not depend on the order keys were set; a
    table becomes a tuple of pairs, which no TOML value is (an empty table is not an empty list)."""
    if isinstance(value, dict):
        return tuple(sorted((key, _canonical(item)) for key, item in value.items()))
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _code() -> list[tuple[str, int, int]] | None:
    """The settings checks' files by name, size and modification time (this package's and the modules they
    use), and the directory of the installed libraries whose rules they apply (pydantic's types, APScheduler's
    crontab parser, tzdata's zones: installing, upgrading or removing any changes that directory): an edit or an
    upgrade is another digest. None when they cannot be looked at (run from a zip): nothing is remembered then."""
    import click  # loaded already: the command line; it lives where pydantic and APScheduler do

    here = Path(__file__).parent
    try:
        files = [here / name for name in sorted(os.listdir(here)) if name.endswith(".py")]
        files += [here.parent / name for name in _OURS]
        files.append(Path(click.__file__).parent.parent)
        return [(str(path), (found := path.stat()).st_size, found.st_mtime_ns) for path in files]
    except (OSError, TypeError):
        return None


def digest(values: dict[str, Any]) -> str | None:
    """The record's name for the merged layer values `values` (TOML and variable values: text, numbers,
    booleans, dates and times, lists and tables; `repr` tells each type apart); None: nothing can be
    remembered (`_code`)."""
    code = _code()
    if code is None:
        return None
    text = repr((code, _canonical(values)))
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def recall(directory: Path, key: str) -> list[str] | None:
    """The secret variable names remembered with values of digest `key`, or None: not validated before (or the
    record is unreadable, which counts the same). A record used is touched, so that the oldest go first."""
    path = directory / f"{key}.json"
    try:
        with path.open("rb") as file:
            text = file.read(MAX_RECORD + 1)
        if len(text) > MAX_RECORD:
            return None
        data = json.loads(text)
        os.utime(path)
    except (OSError, ValueError, RecursionError):
        return None
    names = data.get("secrets") if isinstance(data, dict) else None
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return None
    return names


def remember(directory: Path, key: str, secrets: list[str]) -> None:
    """Record that values of digest `key` passed, with their secret variable names; the oldest records beyond
    `KEEP` go. Never fails: a directory that cannot be written keeps nothing."""
    try:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle, temporary = tempfile.mkstemp(dir=directory, prefix=".", suffix=".tmp")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as out:
                json.dump({"secrets": secrets}, out)
            os.replace(temporary, directory / f"{key}.json")
        except OSError:
            Path(temporary).unlink(missing_ok=True)
            raise
        records = sorted(directory.glob("*.json"), key=lambda path: path.stat().st_mtime_ns, reverse=True)
        for old in records[KEEP:]:
            old.unlink(missing_ok=True)
    except OSError:
        return
