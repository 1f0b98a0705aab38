"""The one way reports and exports reach the disk: whole or not at all, with the permissions the umask gives."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from pulsecheck.errors import InputError


def check_writable(path: str | Path, option: str = "-o") -> Path:
    """The path, if a file can be written there; else an InputError naming the option and path (exit 2).

    Only a regular file is replaced: a directory, device, FIFO, socket or symbolic link is refused."""
    target = Path(path)
    try:
        mode = target.lstat().st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:
        raise InputError(f"{option} {path}: {exc.strerror or exc}") from None
    if mode is not None and stat.S_ISDIR(mode):
        raise InputError(f"{option} {path}: is a directory")
    if mode is not None and not stat.S_ISREG(mode):
        raise InputError(f"{option} {path}: not a regular file; refusing to replace it")
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir():
        raise InputError(f"{option} {path}: no such directory {parent}")
    if not os.access(parent, os.W_OK) or (mode is not None and not os.access(target, os.W_OK)):
        raise InputError(f"{option} {path}: not writable")
    return target


def write_atomic(text: str | bytes, path: str | Path, option: str = "-o") -> Path:
    """Write `text` (or bytes, as they are) to `path` through a temporary file renamed into place, so a failure
    leaves the old file (or none) and never half a file. The file gets 0666 minus the umask, like any file the user
    creates."""
    target = check_writable(path, option)
    parent = target.parent if str(target.parent) else Path(".")
    try:
        handle, temp = tempfile.mkstemp(dir=parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(text.encode("utf-8") if isinstance(text, str) else text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(temp, 0o666 & ~umask)  # mkstemp makes it private
        os.replace(temp, target)
    except OSError as exc:
        Path(temp).unlink(missing_ok=True)
        raise InputError(f"{option} {path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    return target
