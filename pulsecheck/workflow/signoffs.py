"""Checking signed sign-offs, and exporting them so an auditor checks them with `ssh-keygen -Y verify` alone.

A signature verifies when the key whose fingerprint the entry names is registered to the user who signed off,
was valid when the signature was made (added at or before it, not revoked before it), its public key still has
that fingerprint, and ssh-keygen accepts the signature over the statement rebuilt from the entry.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from pulsecheck import signing
from pulsecheck.storage.entries import signed_off, split_signature, statement
from pulsecheck.storage.more_tables import SERVER_KEYS, USER_KEYS
from pulsecheck.storage.tables import AUDIT_CHAIN, USERS

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_CHAIN = AUDIT_CHAIN.c
# What a signature check reads of an entry, in `Signed`'s order (SQLAlchemy Core: `review verify` imports no ORM).
_SIGNED = select(
    _CHAIN.seq, _CHAIN.kind, _CHAIN.record_id, _CHAIN.content, _CHAIN.actor, _CHAIN.prev_hash, _CHAIN.signature,
    _CHAIN.signer_key,
).where(_CHAIN.signer_key.is_not(None) | _CHAIN.signature.is_not(None))


@dataclass(frozen=True)
class Signed:
    """A signed audit entry, detached from the session (`audit verify` reads entries in batches)."""

    seq: int
    kind: str
    record_id: int
    content: str
    actor: str | None
    prev_hash: str
    signature: str | None
    signer_key: str | None

    @property
    def where(self) -> str:
        return f"audit entry {self.seq}"


def signed_entries(
    db: Session | Connection, kind: str | None = None, record_ids: Iterable[int] | None = None
) -> list[Signed]:
    """The entries that carry a signature or a signing key, in chain order; optionally of one kind and records."""
    query = _SIGNED
    if kind is not None:
        query = query.where(_CHAIN.kind == kind)
    if record_ids is not None:
        query = query.where(_CHAIN.record_id.in_(list(record_ids)))
    return [Signed(*row) for row in db.execute(query.order_by(_CHAIN.seq))]


class KeyRing:
    """The registered keys, read once, with each public key's fingerprint checked once."""

    def __init__(self, db: Session | Connection) -> None:
        owned = select(USER_KEYS, USERS.c.name.label("user_name")).join(USERS, USERS.c.id == USER_KEYS.c.user_id)
        rows = db.execute(owned)
        self.keys: dict[str, tuple[Any, str]] = {key.fingerprint: (key, key.user_name) for key in rows}
        # the web server's keys: they countersign web sign-offs for any principal (server-attested)
        self.server: dict[str, Any] = {key.fingerprint: key for key in db.execute(select(SERVER_KEYS))}
        self._matches: dict[str, bool] = {}

    def intact(self, key: Any) -> bool:
        """Whether the stored public key has the fingerprint it is registered under (not swapped)."""
        if key.fingerprint not in self._matches:
            try:
                self._matches[key.fingerprint] = signing.line_fingerprint(key.public_key) == key.fingerprint
            except Exception:  # noqa: BLE001 - an unreadable key is a swapped key
                self._matches[key.fingerprint] = False
        return self._matches[key.fingerprint]


def check(entry: Signed, ring: KeyRing) -> str | None:
    """Why `entry`'s signature does not verify, or None when it does."""
    if entry.signature is None or entry.signer_key is None:
        return f"its signature by {entry.signer_key or '?'} was removed"
    try:
        signed_at, armor = split_signature(entry.signature)
        moment = datetime.fromisoformat(signed_at)
    except ValueError:
        return "its signature is malformed"
    signoff = signed_off(entry.kind, json.loads(entry.content))
    if signoff is None:
        return f"signed, but its {entry.kind} {entry.record_id} records no sign-off"
    principal = signoff[1]
    if entry.signer_key in ring.server and entry.signer_key not in ring.keys:
        return _check_attested(entry, ring.server[entry.signer_key], principal, signed_at, armor, moment)
    found = ring.keys.get(entry.signer_key)
    if found is None or found[1] != principal:
        return f"signed with key {entry.signer_key}, which is not registered to {principal}"
    key, _ = found
    if key.added_at > moment or (key.revoked_at is not None and key.revoked_at <= moment):
        return f"signed at {signed_at} with key {key.id} of {principal}, which was not valid then"
    if not ring.intact(key):
        return f"the public key registered as {key.fingerprint} (key {key.id} of {principal}) was replaced"
    data = statement(entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, signed_at)
    reason = signing.verify(signing.allowed_signer(principal, key.public_key), principal, armor, data, moment)
    return None if reason is None else f"the signature of {principal} does not verify ({reason})"


def _check_attested(
    entry: Signed, key: Any, principal: str, signed_at: str, armor: str, moment: datetime
) -> str | None:
    """Why a server countersignature does not verify, or None."""
    if key.added_at > moment or (key.revoked_at is not None and key.revoked_at <= moment):
        return f"server-attested at {signed_at} with server key {key.fingerprint}, which was not valid then"
    if signing.line_fingerprint(key.public_key) != key.fingerprint:
        return f"the server key registered as {key.fingerprint} was replaced"
    data = statement(entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, signed_at)
    reason = signing.verify(signing.allowed_signer(principal, key.public_key), principal, armor, data, moment)
    return None if reason is None else f"the server's attestation for {principal} does not verify ({reason})"


def describe_signatures(db: Session | Connection, kind: str, record_ids: Iterable[int]) -> list[str]:
    """One line per signed sign-off of these records: who signed what, personally or server-attested."""
    entries = signed_entries(db, kind, record_ids)
    if not entries:  # nothing signed: no need for the keys
        return []
    ring = KeyRing(db)
    lines = []
    for entry in entries:
        signoff = signed_off(entry.kind, json.loads(entry.content))
        if signoff is None or entry.signer_key is None:
            continue
        how = "server-attested (web)" if entry.signer_key in ring.server else "personal signature"
        lines.append(f"{signoff[0]} by {signoff[1]}: {how}, key {entry.signer_key}")
    return lines


def check_all(db: Session | Connection, entries: Iterable[Signed]) -> list[tuple[str, str]]:
    """(where, what) for each entry whose signature does not verify."""
    ring = KeyRing(db)
    found = []
    for entry in entries:
        problem = check(entry, ring)
        if problem is not None:
            found.append((entry.where, problem))
    return found


@dataclass(frozen=True)
class Export:
    """What `audit export` wrote."""

    directory: Path
    keys: int
    entries: int


def export(session: Session, directory: Path) -> Export:
    """Write `allowed_signers`, each signed statement (`entry-<seq>.txt`) and its signature (`.txt.sig`), and a
    README with the `ssh-keygen -Y verify` command of each, plus `verify.sh` running them all."""
    from pulsecheck.reports.files import write_atomic

    ring = KeyRing(session)
    directory.mkdir(parents=True, exist_ok=True)
    signers = [signing.allowed_signer(name, key.public_key, key.added_at, key.revoked_at) for key, name in
               sorted(ring.keys.values(), key=lambda pair: pair[0].id)]
    write_atomic("".join(f"{line}\n" for line in signers), directory / "allowed_signers")
    commands = []
    for entry in signed_entries(session):
        if entry.signature is None or (signoff := signed_off(entry.kind, json.loads(entry.content))) is None:
            continue
        signed_at, armor = split_signature(entry.signature)
        data = statement(entry.seq, entry.prev_hash, entry.kind, entry.record_id, entry.content, entry.actor, signed_at)
        name = f"entry-{entry.seq}.txt"
        write_atomic(data.decode("utf-8"), directory / name)
        write_atomic(armor + "\n", directory / f"{name}.sig")
        when = signing.ssh_time(datetime.fromisoformat(signed_at))
        commands.append(
            f"ssh-keygen -Y verify -f allowed_signers -I {shlex.quote(signoff[1])} -n {signing.NAMESPACE} "
            f"-s {name}.sig -Overify-time={when} < {name}"
        )
    write_atomic(_readme(commands), directory / "README.txt")
    script = write_atomic("#!/bin/sh\n# Verify every signed sign-off; stops at the first failure.\nset -e\n"
                          'cd "$(dirname "$0")"\n' + "".join(f"{c}\n" for c in commands), directory / "verify.sh")
    script.chmod(0o755)
    return Export(directory, len(signers), len(commands))


def _readme(commands: list[str]) -> str:
    return (
        "Signed sign-offs exported by `pulsecheck audit export`.\n\n"
        "allowed_signers   the users' registered SSH public keys (OpenSSH allowed_signers format), each valid\n"
        "                  from when it was registered until it was revoked\n"
        "entry-<seq>.txt   the statement a user signed: the audit chain entry's record, event, signer, time,\n"
        "                  SHA-256 of its content and place in the chain\n"
        "entry-<seq>.txt.sig  its SSH signature (namespace pulsecheck)\n\n"
        "Verify each with OpenSSH alone (or run ./verify.sh):\n\n" + "".join(f"  {c}\n" for c in commands)
    )
