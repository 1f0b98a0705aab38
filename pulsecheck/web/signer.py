"""The server's countersignature on web sign-offs: where `[signing] required`, the sign-off is signed with the
server key `[web] signing_key` (registered in `server_keys`), and `verify` reports it as server-attested."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy.orm import Session

from pulsecheck.errors import InputError, RefusedError

if TYPE_CHECKING:
    from pulsecheck.config import Settings
    from pulsecheck.storage.db import Database


class ServerSigner:
    """Signs every sign-off of a web transaction with the server key (`chain.Signer`)."""

    def __init__(self, key: Path, fingerprint: str, clock: Callable[[], datetime]) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.clock = clock

    def signed_at(self) -> datetime:
        return self.clock()

    def sign(self, session: Session, principal: str, data: bytes) -> tuple[str, str] | None:
        from pulsecheck import signing

        return signing.sign(self.key, data), self.fingerprint


class RefusingSigner:
    """Signatures are required but the server has no key: every web sign-off is refused, naming the fix."""

    def signed_at(self) -> datetime:
        from datetime import UTC

        return datetime.now(UTC)

    def sign(self, session: Session, principal: str, data: bytes) -> tuple[str, str] | None:
        raise RefusedError("sign-offs must be signed ([signing] required) and [web] signing_key is not set")


def server_signer(
    settings: Settings, database: Database, clock: Callable[[], datetime]
) -> ServerSigner | RefusingSigner | None:
    """The signer of web transactions: the server key when `[signing] required` (registered on first use), else
    None (web sign-offs are recorded with the content digest and the audit chain, unsigned)."""
    if not settings.signing.required:
        return None
    if not settings.web.signing_key:
        return RefusingSigner()
    key = Path(settings.web.signing_key).expanduser()
    if not key.exists():
        raise InputError(f"{settings.where('web', 'signing_key')}: {key} does not exist")
    from pulsecheck.workflow.keys import register_server_key

    with database.transaction() as session:
        from pulsecheck.storage import chain

        session.info[chain.ACTOR] = "pulsecheck serve"
        fingerprint = register_server_key(session, key, clock())
    return ServerSigner(key, fingerprint, clock)
