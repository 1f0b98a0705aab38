"""SSH signatures the way git makes them: `ssh-keygen -Y sign|verify` with the namespace `pulsecheck`.

Every operation runs OpenSSH's `ssh-keygen`, so keys held by ssh-agent or a hardware token sign as they do for
git (`-f` may name a public key whose private half is in the agent), and an auditor can repeat each check with
the same tool and no pulsecheck.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from pulsecheck.errors import InputError, RefusedError

NAMESPACE = "pulsecheck"
KEY_TYPES = ("ssh-ed25519", "ssh-rsa", "ecdsa-sha2-", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-")
TIMEOUT = 30  # seconds: a hardware key waits for a touch


def ssh_keygen() -> str:
    """The path of `ssh-keygen`; RefusedError when OpenSSH is not installed."""
    found = shutil.which("ssh-keygen")
    if found is None:
        raise RefusedError("ssh-keygen not found: install OpenSSH (openssh-client) to sign and verify")
    return found


def _run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(  # noqa: S603 - a fixed program and arguments we built, no shell
        [ssh_keygen(), *args], input=data, capture_output=True, timeout=TIMEOUT, check=False
    )


def _first_error(result: subprocess.CompletedProcess[bytes]) -> str:
    lines = (result.stderr or result.stdout).decode("utf-8", "replace").strip().splitlines()
    return lines[-1] if lines else f"ssh-keygen exited with {result.returncode}"


def fingerprint(path: Path) -> str:
    """The SHA256 fingerprint of the key in `path` (public or private), as `ssh-keygen -l` prints it."""
    result = _run(["-l", "-E", "sha256", "-f", str(path)])
    if result.returncode != 0:
        raise InputError(f"{path}: not an SSH key ({_first_error(result)})")
    return result.stdout.decode().split()[1]


def public_key_line(path: Path) -> str:
    """The one OpenSSH public key line of file `path`; InputError for a private key or anything else."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except UnicodeDecodeError:
        raise InputError(f"{path}: not an OpenSSH public key (binary file)") from None
    if "PRIVATE KEY" in text:
        raise InputError(f"{path}: this is a private key; give its public half ({path}.pub)")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    if len(lines) != 1 or not lines[0].startswith(KEY_TYPES):
        raise InputError(f"{path}: expected one OpenSSH public key line (ssh-ed25519 AAAA... comment)")
    return " ".join(lines[0].split())


def line_fingerprint(line: str) -> str:
    """The SHA256 fingerprint of one public key line (ssh-keygen reads it from standard input)."""
    result = _run(["-l", "-E", "sha256", "-f", "-"], line.encode() + b"\n")
    if result.returncode != 0:
        raise InputError(f"not an SSH public key: {_first_error(result)}")
    return result.stdout.decode().split()[1]


def generate(path: Path, comment: str) -> None:
    """Create an Ed25519 key pair without a passphrase at `path` (private, mode 0600) and `path`.pub."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    result = _run(["-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)])
    if result.returncode != 0:
        raise RefusedError(f"{path}: ssh-keygen could not create the key ({_first_error(result)})")
    path.chmod(0o600)  # ssh-keygen does, but an odd umask or filesystem must not leave it readable


def sign(key: Path, data: bytes) -> str:
    """The armored SSH signature of `data` by `key` (a private key, or a public key whose private half is in
    ssh-agent); RefusedError with ssh-keygen's reason when it cannot sign."""
    result = _run(["-Y", "sign", "-n", NAMESPACE, "-q", "-f", str(key)], data)
    if result.returncode != 0 or b"BEGIN SSH SIGNATURE" not in result.stdout:
        raise RefusedError(f"signing with {key} failed: {_first_error(result)}")
    return result.stdout.decode().strip()


def ssh_time(moment: datetime) -> str:
    """A time as ssh-keygen reads it in allowed_signers and `-Overify-time` (UTC, `YYYYMMDDHHMMSSZ`)."""
    return moment.astimezone(UTC).strftime("%Y%m%d%H%M%SZ")


def allowed_signer(
    principal: str, public_key: str, valid_after: datetime | None = None, valid_before: datetime | None = None
) -> str:
    """One line of an OpenSSH allowed_signers file: `principal` may sign with `public_key` in that period."""
    options = [f'namespaces="{NAMESPACE}"']
    if valid_after is not None:
        options.append(f'valid-after="{ssh_time(valid_after)}"')
    if valid_before is not None:
        options.append(f'valid-before="{ssh_time(valid_before)}"')
    quoted = f'"{principal}"' if any(c.isspace() or c in ',"' for c in principal) else principal
    return f"{quoted} {','.join(options)} {public_key}"


def verify(allowed: str, principal: str, signature: str, data: bytes, at: datetime) -> str | None:
    """None when `signature` is `principal`'s valid signature of `data` at time `at` under the allowed_signers
    text `allowed`, else ssh-keygen's reason."""
    with tempfile.TemporaryDirectory(prefix="pulsecheck-verify-") as tmp:
        signers, sig = Path(tmp) / "allowed_signers", Path(tmp) / "statement.sig"
        signers.write_text(allowed + "\n", encoding="utf-8")
        sig.write_text(signature + "\n", encoding="utf-8")
        args = ["-Y", "verify", "-f", str(signers), "-I", principal, "-n", NAMESPACE, "-s", str(sig)]
        result = _run([*args, f"-Overify-time={ssh_time(at)}"], data)
    return None if result.returncode == 0 else _first_error(result)
