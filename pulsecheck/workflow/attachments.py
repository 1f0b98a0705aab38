"""Files stored in the database: content-addressed by SHA-256 (the same bytes are stored once), linked to a record
(a review, a cycle step) under a number, a file name and a note. What signatures and seals bind is the list of
(number, name, sha256, note); `problems` checks that the stored bytes still have the sha256 they are filed under.

Links to the outside stay links, and only http and https: anything else (`javascript:`, `file:`, `data:`) would
become a clickable link in an exported report."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import bindparam, delete, func, select

from pulsecheck.errors import InputError, NotFoundError, RefusedError
from pulsecheck.states import review as review_machine
from pulsecheck.storage.tables import ATTACHMENT_LINKS, ATTACHMENTS

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

    from pulsecheck.storage.models import Attachment, AttachmentLink

# The links and the stored bytes are read on SQLAlchemy Core (rows with the columns' names as attributes, as the
# mapped objects have): showing and listing reviews checks them without the ORM (issue 17).
_LINK = ATTACHMENT_LINKS.c
_STORED = ATTACHMENTS.c

REVIEW = "review"
CYCLE_STEP = "cycle_step"
DEFAULT_MAX_SIZE = 10 * 1024 * 1024
URL_SCHEMES = ("http", "https")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]+):")  # two letters at least: `C:\x` is a Windows path


class Upload(NamedTuple):  # not a dataclass: cheaper to make at every start-up (issue 17)
    """A file read from disk, checked against the size limit, not stored yet."""

    filename: str
    content: bytes

    @property
    def sha256(self) -> str:
        """The address the bytes are stored under."""
        return hashlib.sha256(self.content).hexdigest()


def read_upload(path: str, max_size: int, option: str = "FILE") -> Upload:
    """The bytes of a regular file no larger than `max_size`; else an InputError naming the option and path."""
    source = Path(path).expanduser()
    if not source.exists():
        raise InputError(f"{option} {path}: no such file or directory (give a path or a URL)")
    if not source.is_file():
        raise InputError(f"{option} {path}: not a regular file")
    size = source.stat().st_size
    if size > max_size:
        raise InputError(
            f"{option} {path}: {size} bytes, over the attachment limit of {max_size} bytes ([attachments] max_size)"
        )
    try:
        content = source.read_bytes()
    except OSError as exc:
        raise InputError(f"{option} {path}: cannot read: {exc.strerror or exc}") from None
    if len(content) > max_size:  # it grew while we looked
        raise InputError(f"{option} {path}: over the attachment limit of {max_size} bytes ([attachments] max_size)")
    return Upload(source.name, content)


def link_or_file(text: str, max_size: int, option: str = "--evidence") -> str | Upload:
    """An http(s) URL as given, or an existing file's bytes; any other scheme is refused as bad input."""
    item = text.strip()
    if not item:
        raise InputError(f"{option} is empty")
    scheme = _SCHEME.match(item)
    if scheme and not Path(item).expanduser().is_file():
        name = scheme.group(1).lower()
        parts = urlsplit(item)
        if name not in URL_SCHEMES:
            raise InputError(f"{option} {item}: only http and https links are allowed, not {name}:")
        if not parts.netloc or any(ch.isspace() or ord(ch) < 32 for ch in item):
            raise InputError(f"{option} {item}: not a valid {name} URL")
        return item
    return read_upload(item, max_size, option)


# --- storing and reading --------------------------------------------------------------------------


def store(session: Session, upload: Upload, now: datetime) -> Attachment:
    """The stored attachment of these bytes, stored now unless the same bytes already are."""
    from pulsecheck.storage.models import Attachment

    found = session.get(Attachment, upload.sha256)
    if found is None:
        found = Attachment(sha256=upload.sha256, size=len(upload.content), content=upload.content, stored_at=now)
        session.add(found)
        session.flush()
    return found


def attach(
    session: Session, kind: str, record_id: int, upload: Upload, actor: str, now: datetime, note: str | None = None
) -> AttachmentLink:
    """Store the upload and link it to the record under the next number."""
    from pulsecheck.storage.models import AttachmentLink

    store(session, upload, now)
    last = session.scalar(select(func.max(_LINK.number)).where(_LINK.record_kind == kind, _LINK.record_id == record_id))
    link = AttachmentLink(
        record_kind=kind,
        record_id=record_id,
        number=(last or 0) + 1,
        sha256=upload.sha256,
        filename=upload.filename,
        note=(note or "").strip() or None,
        added_by=actor,
        added_at=now,
    )
    session.add(link)
    session.flush()
    return link


def links_of(db: Session | Connection, kind: str, record_id: int) -> list[Any]:
    """The record's attachment links by number (rows)."""
    query = select(ATTACHMENT_LINKS).where(_LINK.record_kind == kind, _LINK.record_id == record_id)
    return list(db.execute(query.order_by(_LINK.number)))


def links_of_records(db: Session | Connection, kind: str, record_ids: list[int]) -> list[Any]:
    """The attachment links of many records of one kind (an account's reviews), by record and number, in one
    query (rows)."""
    if not record_ids:
        return []
    query = select(ATTACHMENT_LINKS).where(_LINK.record_kind == kind, _LINK.record_id.in_(record_ids))
    return list(db.execute(query.order_by(_LINK.record_id, _LINK.number)))


def sizes_of(db: Session | Connection, links: list[Any]) -> dict[str, int]:
    """The stored size of each link's bytes by sha256 (missing bytes are left out), in one query."""
    wanted = sorted({link.sha256 for link in links})
    if not wanted:
        return {}
    return dict(db.execute(select(_STORED.sha256, _STORED.size).where(_STORED.sha256.in_(wanted))).tuples().all())


def stored_of(db: Session | Connection, links: list[Any]) -> dict[str, Any]:
    """The stored bytes of each link by sha256 (missing bytes are left out), in one query, as rows."""
    wanted = sorted({link.sha256 for link in links})
    if not wanted:
        return {}
    return {row.sha256: row for row in db.execute(select(ATTACHMENTS).where(_STORED.sha256.in_(wanted)))}


def unlink(session: Session, kind: str, record_ids: list[int]) -> None:
    """Drop the links of records that are gone (a step that runs again); the bytes stay, others may use them."""
    if record_ids:
        session.execute(delete(ATTACHMENT_LINKS).where(_LINK.record_kind == kind, _LINK.record_id.in_(record_ids)))


def bound(link: Any) -> dict[str, Any]:
    """What a signature or a seal binds of one attachment: its number, name, note and the sha256 of its bytes."""
    return {"number": link.number, "filename": link.filename, "sha256": link.sha256, "note": link.note}


def link_dict(db: Session | Connection, link: Any) -> dict[str, Any]:
    """The JSON shape of one attachment (`review attachments --json`)."""
    size = sizes_of(db, [link]).get(link.sha256)
    return bound(link) | {
        "size": size,
        "added_by": link.added_by,
        "added_at": link.added_at.isoformat(),
    }


def content(db: Session | Connection, kind: str, record_id: int, number: int, what: str) -> tuple[Any, bytes]:
    """The link and stored bytes of attachment `number` of a record; refused when the bytes changed since."""
    link = next((k for k in links_of(db, kind, record_id) if k.number == number), None)
    if link is None:
        raise NotFoundError(f"{what} has no attachment {number}")
    stored = stored_of(db, [link]).get(link.sha256)
    if stored is None or hashlib.sha256(stored.content).hexdigest() != link.sha256:
        raise RefusedError(f"attachment {number} of {what}: the stored bytes do not match sha256 {link.sha256}")
    return link, bytes(stored.content)


def problems(db: Session | Connection, links: list[Any], what: str) -> list[str]:
    """One line per attachment whose stored bytes are missing or no longer hash to the sha256 it is filed under."""
    found: list[str] = []
    held = stored_of(db, links)
    for link in links:
        stored = held.get(link.sha256)
        if stored is None:
            found.append(f"attachment {link.number} ({link.filename}) of {what}: stored bytes are missing")
        elif hashlib.sha256(stored.content).hexdigest() != link.sha256:
            found.append(
                f"attachment {link.number} ({link.filename}) of {what}: stored bytes changed "
                f"(filed as sha256 {link.sha256[:16]}…)"
            )
    return found


# --- reviews ----------------------------------------------------------------------------------------


# Built once, run on the session's connection (every transition reads it): links are written by `attach`, which
# flushes, and dropped by Core statements, so the stored rows are the session's.
_REVIEW_LINKS = (
    select(_LINK.number, _LINK.filename, _LINK.sha256, _LINK.note)
    .where(_LINK.record_kind == REVIEW, _LINK.record_id == bindparam("record_id"))
    .order_by(_LINK.number)
)


def review_attachments(session: Session | None, review_id: int | None) -> tuple[review_machine.AttachmentData, ...]:
    """What a review's signatures bind of its attachments (none for a review not stored yet)."""
    if session is None or review_id is None:
        return ()
    rows = session.connection().execute(_REVIEW_LINKS, {"record_id": review_id})
    return tuple(review_machine.AttachmentData(*row) for row in rows)
