"""Reading input files honestly and within bounds: only regular files, at most a given size, strict UTF-8 (a
leading byte-order mark accepted), and errors that name the file and the byte where decoding failed."""

from __future__ import annotations

import codecs
import os
import stat
from pathlib import Path
from typing import TextIO

from pulsecheck.errors import InputError

_SCAN_CHUNK = 1 << 20


def regular_file(path: str | Path) -> int:
    """The size of `path` in bytes; InputError unless it is a readable regular file (not a directory, a device
    such as /dev/zero, or a pipe, which could be endless)."""
    try:
        info = os.stat(path)
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise InputError(f"{path}: not a regular file")
    return info.st_size


def read_text(path: str | Path, limit: int) -> str:
    """The text of a UTF-8 file of at most `limit` bytes (a BOM is dropped); InputError naming the file
    otherwise."""
    size = regular_file(path)
    if size > limit:
        raise InputError(f"{path}: {size:,} bytes is over the limit of {limit:,} bytes")
    try:
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)  # the file may have grown since stat
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    if len(data) > limit:
        raise InputError(f"{path}: over the limit of {limit:,} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise InputError(not_utf8(str(path), data[:4], exc.start, line, data[exc.start])) from None
    return text.removeprefix("\ufeff")


def open_text(path: str | Path) -> TextIO:
    """A regular file opened for streaming as UTF-8 text (BOM dropped) with line endings kept as they are
    (`newline=""`), so that CSV keeps line breaks inside quoted fields; a decoding error while reading is a
    UnicodeDecodeError that `undecodable` turns into a message."""
    regular_file(path)
    try:
        return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - the caller closes it
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None


def undecodable(path: str | Path) -> InputError:
    """The error for a file that failed to decode as UTF-8, naming the first bad byte: its offset and line.

    A streaming reader only knows its position in decoded text; this scans the bytes again to say where."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, lines, head = 0, 0, b""
    try:
        with open(path, "rb") as handle:
            while True:
                chunk = handle.read(_SCAN_CHUNK)
                head = head or chunk[:4]
                pending = decoder.getstate()[0]
                try:
                    decoder.decode(chunk, final=not chunk)
                except UnicodeDecodeError as exc:
                    data = pending + chunk
                    line = lines + data.count(b"\n", 0, exc.start) + 1
                    where = offset - len(pending) + exc.start
                    return InputError(not_utf8(str(path), head, where, line, data[exc.start]))
                if not chunk:
                    break
                offset += len(chunk)
                lines += chunk.count(b"\n")
    except OSError as exc:
        return InputError(f"{path}: cannot read: {exc.strerror}")
    return InputError(f"{path}: not UTF-8 text")  # changed while we read it


def not_utf8(source: str, head: bytes, offset: int, line: int, byte: int) -> str:
    """`source: not UTF-8 text: ...` naming the first bad byte, its offset (0-based) and line."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return f"{source}: not UTF-8 text: the file is UTF-16 (byte-order mark at byte 0); save it as UTF-8"
    return f"{source}: not UTF-8 text: byte 0x{byte:02x} at offset {offset} (line {line}); save it as UTF-8"
