"""Jinja2 templates compiled once per user, not once per command (issue 17).

Each command is a new process, and Jinja2 compiles a template to Python on its first use in a process: lexing,
parsing and code generation cost `cycle show` about an eighth of its start-up. Jinja2's own bytecode cache keeps the
compiled code in the user's cache directory (`~/.cache/pulsecheck/templates`, XDG honoured); a template is checked
against its source's checksum on every load, and Jinja2's header names its own code version and Python's, so an
edited template or an upgrade compiles again. One file name per template, environment settings and Jinja2
version: what compiles differently never shares a file.

The cached code runs in this process, like byte-code of Python's own: the directory is made private (0700) and not
used at all unless it is this user's and no one else may write to it. A cache that cannot be read or written, or a
file in it that does not load, costs only the compile it would have saved.
"""

from __future__ import annotations

import hashlib
import os
import stat
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2.bccache import BytecodeCache


def bytecode_cache(kind: str, settings: dict[str, Any]) -> BytecodeCache | None:
    """The cache for an environment of `kind` made with `settings` (what changes the compiled code); None when the
    user's cache directory may not be trusted with code."""
    import jinja2
    import platformdirs
    from jinja2.bccache import FileSystemBytecodeCache

    class PrivateCache(FileSystemBytecodeCache):
        def load_bytecode(self, bucket: Any) -> None:
            try:
                super().load_bytecode(bucket)
            except Exception:  # noqa: BLE001 - a damaged file (pickle, marshal): compiled again and replaced
                bucket.reset()

        def dump_bytecode(self, bucket: Any) -> None:
            try:
                super().dump_bytecode(bucket)
            except OSError:  # full disk, read-only home: compiled again next time
                pass

    directory = platformdirs.user_cache_path("pulsecheck") / "templates"
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        found = os.lstat(directory)
    except OSError:
        return None
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return None
    tag = hashlib.sha256(repr((kind, sorted(settings.items()), jinja2.__version__)).encode()).hexdigest()[:16]
    return PrivateCache(str(directory), f"{tag}-%s.cache")
