"""Personal signing keys: register, revoke and create them, and the signer that signs a transaction's sign-offs
with the user's key (`pulsecheck.storage.chain` calls it). How `keys list` shows them is `key_views`, on Core."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from pulsecheck import signing
from pulsecheck.errors import ConflictError, NotFoundError, RefusedError
from pulsecheck.states import permissions
from pulsecheck.storage.models import User, UserKey
from pulsecheck.timeutil import iso
from pulsecheck.workflow.users import get_user

KEY_FILE = "signing_ed25519"  # `keys new` writes it (and its .pub) in the user config dir


def default_key_path() -> Path:
    """Where `keys new` puts the key and where signing looks when `[signing] key` is not set (platformdirs'
    user config dir, which follows XDG_CONFIG_HOME)."""
    import platformdirs

    return platformdirs.user_config_path("pulsecheck") / KEY_FILE


def may_manage_keys(actor: User, user: User) -> bool:
    """Whether `actor` may add or revoke `user`'s keys: their own, or anyone's for an admin."""
    return permissions.allowed("keys.manage", permissions.actor(actor.name, actor.role_set, {"self": user.name}))


def _check_may_manage(actor: User, user: User) -> None:
    if not may_manage_keys(actor, user):
        raise RefusedError(f"{actor.name} cannot manage the keys of {user.name} (their own, or an admin)")


def add_key(session: Session, actor: User, user_name: str, path: Path, now: datetime) -> UserKey:
    """Register the OpenSSH public key in file `path` for `user_name`; a key belongs to one user only."""
    user = get_user(session, user_name, what="--user")
    _check_may_manage(actor, user)
    line = signing.public_key_line(path)
    fingerprint = signing.fingerprint(path)
    taken = session.scalar(select(UserKey).where(UserKey.fingerprint == fingerprint))
    if taken is not None:
        owner = session.get(User, taken.user_id)
        whose = owner.name if owner else "?"
        raise ConflictError(f"key {fingerprint} is already registered (key {taken.id} of {whose})")
    key = UserKey(user_id=user.id, fingerprint=fingerprint, public_key=line, added_by=actor.name, added_at=now)
    session.add(key)
    session.flush()
    return key


def find_key(session: Session, ident: str) -> UserKey:
    """A key by id or fingerprint (`SHA256:...`, the prefix may be left out)."""
    if ident.isascii() and ident.isdigit():
        key = session.get(UserKey, int(ident))
    else:
        wanted = ident if ident.startswith("SHA256:") else f"SHA256:{ident}"
        key = session.scalar(select(UserKey).where(UserKey.fingerprint == wanted))
    if key is None:
        raise NotFoundError(f"unknown key {ident!r} (see `pulsecheck keys list`)")
    return key


def revoke_key(session: Session, actor: User, ident: str, now: datetime) -> UserKey:
    """Revoke a key from `now` on; what it signed before still verifies."""
    key = find_key(session, ident)
    user = session.get(User, key.user_id)
    assert user is not None  # a foreign key
    _check_may_manage(actor, user)
    if key.revoked_at is not None:
        raise RefusedError(f"key {key.id} was already revoked by {key.revoked_by} at {iso(key.revoked_at)}")
    key.revoked_by, key.revoked_at = actor.name, now
    session.flush()
    return key


def create_key_file(path: Path, comment: str) -> Path:
    """Generate an Ed25519 key pair at `path` (mode 0600) and `path`.pub; refused when `path` exists."""
    if path.exists() or Path(f"{path}.pub").exists():
        raise RefusedError(f"{path} already exists: register it with `pulsecheck keys add {path}.pub`")
    signing.generate(path, comment)
    return Path(f"{path}.pub")


class KeySigner:
    """Signs sign-offs with a local key registered to the user who signs off (`chain.Signer`).

    `key` is the key this process signs with (settings `[signing] key`, else `keys new`'s); `keys` maps user
    names to their own keys instead (the demo acts for several people). With `required`, a sign-off that cannot
    be signed is refused, naming the fix."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        key: Path | None = None,
        keys: Mapping[str, Path] | None = None,
        required: bool = False,
    ) -> None:
        self.clock = clock
        self.key = key
        self.keys = dict(keys or {})
        self.required = required
        self._fingerprints: dict[Path, str] = {}

    def signed_at(self) -> datetime:
        return self.clock()

    def sign(self, session: Session, principal: str, data: bytes) -> tuple[str, str] | None:
        key = self.keys.get(principal) if self.keys else self.key
        if key is None or not key.exists():
            self._unsigned(f"{principal} has no signing key here: run `pulsecheck keys new`")
            return None
        if key not in self._fingerprints:
            self._fingerprints[key] = signing.fingerprint(key)
        fingerprint = self._fingerprints[key]
        registered = session.scalar(
            select(UserKey.id)
            .join(User, User.id == UserKey.user_id)
            .where(User.name == principal, UserKey.fingerprint == fingerprint, UserKey.revoked_at.is_(None))
        )
        if registered is None:
            public = key if key.suffix == ".pub" else Path(f"{key}.pub")
            hint = f"`pulsecheck keys add {public}`, or `pulsecheck keys new`"
            self._unsigned(f"the signing key {key} ({fingerprint}) is not registered to {principal}: run {hint}")
            return None
        return signing.sign(key, data), fingerprint

    def _unsigned(self, why: str) -> None:
        """Refuse when signatures are required; otherwise the sign-off goes unsigned."""
        if self.required:
            raise RefusedError(f"sign-offs must be signed ([signing] required): {why}")


def signer_for(required: bool, key: str | None, clock: Callable[[], datetime]) -> KeySigner:
    """The signer of the CLI's transactions from the `[signing]` settings (a key is never blank: validated)."""
    return KeySigner(clock, Path(key).expanduser() if key else default_key_path(), required=required)


def register_server_key(session: Session, key: Path, now: datetime) -> str:
    """Register the web server's key (its public half) if it is not yet; returns its fingerprint."""
    from pulsecheck.storage.models import ServerKey

    public = key if key.suffix == ".pub" else Path(f"{key}.pub")
    fingerprint = signing.fingerprint(key)
    if session.scalar(select(ServerKey.id).where(ServerKey.fingerprint == fingerprint)) is None:
        line = signing.public_key_line(public)
        session.add(ServerKey(fingerprint=fingerprint, public_key=line, added_at=now))
        session.flush()
    return fingerprint
