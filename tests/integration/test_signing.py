"""Personal SSH signatures: keys add/list/revoke/new through the CLI, sign-offs signed with the user's key and
verified against the key registered then, `[signing] required`, and an export checked by the real ssh-keygen."""

from __future__ import annotations

import json
import sqlite3
import stat
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from pulsecheck.cli import cli

pytestmark = pytest.mark.skipif(
    subprocess.run(["which", "ssh-keygen"], capture_output=True).returncode != 0, reason="needs OpenSSH ssh-keygen"
)
NOW = "2026-11-24T09:00:00+00:00"
LATER = "2026-11-25T09:00:00+00:00"
SCORING = Path(__file__).parents[2] / "pulsecheck" / "demo" / "samples" / "scoring.yaml"


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    config = tmp_path / "config"
    monkeypatch.setenv("XDG_CONFIG_HOME", str(config))  # platformdirs reads the process's environment
    for name in ("PULSECHECK_USER", "PULSECHECK_CONFIG", "PULSECHECK_SIGNING__REQUIRED"):
        monkeypatch.delenv(name, raising=False)
    return {
        "XDG_CONFIG_HOME": str(config),
        "PULSECHECK_DATABASE_URL": f"sqlite:///{tmp_path / 'p.db'}",
        "PULSECHECK_NOW": NOW,
        "PULSECHECK_SYSTEM_CONFIG": "",
    }


def run(env: dict[str, str], *args: str, now: str = NOW, **extra: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={**env, "PULSECHECK_NOW": now, **extra})


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    return result.output


def keypair(directory: Path, name: str) -> Path:
    """A key made by ssh-keygen itself, independently of the code under test."""
    path = directory / name
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(path)], check=True)
    return path


def fingerprint_of(path: Path) -> str:
    out = subprocess.run(["ssh-keygen", "-l", "-f", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split()[1]


@pytest.fixture
def team(env: dict[str, str]) -> dict[str, str]:
    ok(run(env, "init"))  # the OS login becomes the first admin
    for name, role in (("root", "admin"), ("olga", "ops"), ("maria", "manager")):
        ok(run(env, "users", "add", name, "--role", role))
    return env


def chain(env: dict[str, str], where: str = "1 = 1") -> list[tuple]:
    path = env["PULSECHECK_DATABASE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        query = f"SELECT seq, kind, signature, signer_key FROM audit_chain WHERE {where} ORDER BY seq"
        return conn.execute(query).fetchall()


def test_keys_new_makes_a_private_key_only_its_owner_reads_and_registers_it(team: dict[str, str]) -> None:
    out = ok(run(team, "--as", "olga", "keys", "new"))
    private = Path(team["XDG_CONFIG_HOME"]) / "pulsecheck" / "signing_ed25519"
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    expected = fingerprint_of(private)
    assert f"key 1 of olga: {expected}" in out
    listed = json.loads(ok(run(team, "keys", "list", "--json", "--user", "olga")))["items"]
    assert [(k["user"], k["fingerprint"], k["type"], k["revoked_at"]) for k in listed] == [
        ("olga", expected, "ssh-ed25519", None)
    ]
    again = run(team, "--as", "olga", "keys", "new")
    assert again.exit_code == 1 and "already exists" in again.output


def test_keys_add_is_for_oneself_or_an_admin_and_one_key_has_one_owner(team: dict[str, str], tmp_path: Path) -> None:
    key = keypair(tmp_path, "maria_key")
    refused = run(team, "--as", "olga", "keys", "add", f"{key}.pub", "--user", "maria")
    assert refused.exit_code == 1 and "cannot manage the keys of maria" in refused.output
    ok(run(team, "--as", "root", "keys", "add", f"{key}.pub", "--user", "maria"))
    taken = run(team, "--as", "olga", "keys", "add", f"{key}.pub")
    assert taken.exit_code == 1 and "already registered" in taken.output
    private = run(team, "--as", "olga", "keys", "add", str(key))
    assert private.exit_code == 2 and "private key" in private.output
    assert chain(team, "kind = 'key'") != []  # a key change joins the audit chain


def test_a_signoff_is_signed_and_verifies_and_a_revoked_key_still_verifies_it(team: dict[str, str]) -> None:
    ok(run(team, "--as", "olga", "keys", "new"))
    ok(run(team, "--as", "olga", "model", "approve", str(SCORING)))
    [(_, _, signature, signer)] = chain(team, "kind = 'model'")
    assert signer == fingerprint_of(Path(team["XDG_CONFIG_HOME"]) / "pulsecheck" / "signing_ed25519")
    assert "BEGIN SSH SIGNATURE" in signature
    assert "1 signatures verify" in ok(run(team, "audit", "verify"))
    ok(run(team, "--as", "olga", "keys", "revoke", signer, now=LATER))
    revoked = json.loads(ok(run(team, "keys", "list", "--json")))["items"][0]
    assert (revoked["revoked_by"], revoked["revoked_at"]) == ("olga", LATER)
    assert "1 signatures verify" in ok(run(team, "audit", "verify", now=LATER))


def test_unsigned_when_not_required_refused_with_a_hint_when_required(team: dict[str, str]) -> None:
    ok(run(team, "--as", "olga", "model", "approve", str(SCORING)))
    assert [row[2:] for row in chain(team, "kind = 'model'")] == [(None, None)]
    required = run(team, "--as", "olga", "rules", "validate", "--help", PULSECHECK_SIGNING__REQUIRED="true")
    assert required.exit_code == 0  # commands that sign nothing are unaffected
    rules = str(SCORING.with_name("rules.yaml"))
    refused = run(team, "--as", "maria", "rules", "activate", rules, PULSECHECK_SIGNING__REQUIRED="true")
    assert refused.exit_code == 1, refused.output
    assert refused.stderr.count("\n") == 1 and "pulsecheck keys new" in refused.stderr
    assert refused.stdout.startswith("blast radius of ") and "active (sha256" not in refused.stdout  # a preview only
    assert chain(team, "kind = 'ruleset'") == []  # nothing half written
    ok(run(team, "--as", "maria", "keys", "new"))
    ok(run(team, "--as", "maria", "rules", "activate", rules, PULSECHECK_SIGNING__REQUIRED="true"))
    [(_, _, signature, _)] = chain(team, "kind = 'ruleset'")
    assert signature is not None


def tamper(env: dict[str, str], statement: str) -> None:
    with sqlite3.connect(env["PULSECHECK_DATABASE_URL"].removeprefix("sqlite:///")) as conn:
        conn.execute(statement)


@pytest.fixture
def signed(team: dict[str, str]) -> dict[str, str]:
    ok(run(team, "--as", "olga", "keys", "new"))
    ok(run(team, "--as", "olga", "model", "approve", str(SCORING)))
    return team


def test_a_changed_signature_is_named_by_audit_verify(signed: dict[str, str], tmp_path: Path) -> None:
    (seq, _, signature, _), = chain(signed, "signature IS NOT NULL")
    other = keypair(tmp_path, "other")
    forged = subprocess.run(
        ["ssh-keygen", "-Y", "sign", "-n", "pulsecheck", "-f", str(other)], input=b"forged", capture_output=True,
        check=True,
    ).stdout.decode()
    tamper(signed, f"UPDATE audit_chain SET signature = '{signature.splitlines()[0]}\n{forged}' WHERE seq = {seq}")
    result = run(signed, "audit", "verify")
    assert result.exit_code == 1
    assert f"audit entry {seq}: the signature of olga does not verify" in result.output


def test_a_swapped_public_key_is_named_by_audit_verify(signed: dict[str, str], tmp_path: Path) -> None:
    other = (keypair(tmp_path, "other").with_suffix(".pub")).read_text().strip()
    tamper(signed, f"UPDATE user_keys SET public_key = '{other}' WHERE id = 1")
    result = run(signed, "audit", "verify")
    assert result.exit_code == 1
    assert "(key 1 of olga) was replaced" in result.output


def test_a_stripped_signature_breaks_the_chain(signed: dict[str, str]) -> None:
    (seq, *_), = chain(signed, "signature IS NOT NULL")
    tamper(signed, f"UPDATE audit_chain SET signature = NULL, signer_key = NULL WHERE seq = {seq}")
    result = run(signed, "audit", "verify")
    assert result.exit_code == 1 and f"audit entry {seq}: modified" in result.output


def test_the_export_verifies_with_ssh_keygen_alone(signed: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert "1 signed sign-offs, 1 keys" in ok(run(signed, "audit", "export", str(out)))
    (seq, *_), = chain(signed, "signature IS NOT NULL")
    statement = (out / f"entry-{seq}.txt").read_bytes()
    assert b"record: model 1\nevent: approve\nsigner: olga\n" in statement
    verify = [
        "ssh-keygen", "-Y", "verify", "-f", str(out / "allowed_signers"), "-I", "olga", "-n", "pulsecheck",
        "-s", str(out / f"entry-{seq}.txt.sig"), "-Overify-time=20261124090000Z",
    ]
    good = subprocess.run(verify, input=statement, capture_output=True, text=False)
    assert good.returncode == 0, good.stderr
    assert b'Good "pulsecheck" signature for olga' in good.stdout
    bad = subprocess.run(verify, input=statement.replace(b"olga", b"oleg"), capture_output=True)
    assert bad.returncode != 0
    early = subprocess.run([*verify[:-1], "-Overify-time=20261123000000Z"], input=statement, capture_output=True)
    assert early.returncode != 0  # allowed_signers says when the key became valid
    script = subprocess.run(["sh", str(out / "verify.sh")], capture_output=True)
    assert script.returncode == 0 and script.stdout.count(b"Good") == 1
