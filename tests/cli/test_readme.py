"""The README's commands run exactly as written, top to bottom, in a fresh directory.

Every ```sh block runs, in order, in one bash process, so `export` and `cd` carry over as they do for a reader.
A block opened with ```sh norun is one a reader runs elsewhere (`make`, the scheduler daemon) and is skipped.
Each line is one command, and its exit code and stderr are checked on their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
VENV_BIN = Path(sys.executable).parent  # where the project's `pulsecheck` script is
NOW = "2026-11-24T18:00:00+00:00"  # the sample data's "today", as the tour sets it too
MOST_NORUN_BLOCKS = 3  # a README of skipped blocks would test nothing: keep them few


def sh_blocks(text: str) -> list[tuple[str, list[str]]]:
    """The fenced sh blocks of a Markdown text as (marker, commands): the marker is what follows `sh` on the
    opening fence ('' or 'norun'); each command is one line, backslash continuations joined, comments and
    blank lines dropped."""
    blocks: list[tuple[str, list[str]]] = []
    body: list[str] | None = None  # the lines of the block being read; None between blocks
    info = ""
    for line in text.splitlines():
        if line.startswith("```"):
            if body is None:
                info, body = line[3:].strip(), []
            else:
                language, _, marker = info.partition(" ")
                if language == "sh":
                    blocks.append((marker.strip(), commands(body)))
                body = None
        elif body is not None:
            body.append(line)
    return blocks


def commands(lines: list[str]) -> list[str]:
    """One command per line; a line ending in a backslash continues on the next."""
    found: list[str] = []
    pending = ""
    for line in lines:
        if line.rstrip().endswith("\\"):
            pending += line.strip()[:-1].strip() + " "
            continue
        command, pending = pending + line.strip(), ""
        if command and not command.startswith("#"):
            found.append(command)
    return found


def script(commands: list[str], logs: Path) -> str:
    """A bash script running each command in the current shell (a `{ ...; }` group, not a subshell), its
    output and stderr in logs/N.out and logs/N.err; the first failure writes logs/failed and stops."""
    lines = []
    for number, command in enumerate(commands):
        # The newline before `}` keeps a trailing `# comment` from swallowing it.
        lines.append(f"{{ {command}\n}} </dev/null >{logs}/{number}.out 2>{logs}/{number}.err")
        lines.append(f"status=$?; if [ $status -ne 0 ]; then echo $status >{logs}/failed; exit 0; fi")
        lines.append(f"echo {number} >{logs}/done")
    return "\n".join(lines) + "\n"


def test_the_sh_blocks_are_found_with_their_markers_and_continuations():
    text = (
        "intro\n```sh norun\nmake run   # comment\n```\n```toml\nx = 1\n```\n"
        "```sh\n# a comment\nexport A=1\n\npulsecheck a \\\n  --b c   # why\n```\n```\n$ plain text\n```\n"
    )
    assert sh_blocks(text) == [("norun", ["make run   # comment"]), ("", ["export A=1", "pulsecheck a --b c   # why"])]


@pytest.mark.slow  # about a minute: a process per command
def test_the_readme_tour_runs_as_written_in_a_fresh_directory(tmp_path):
    blocks = sh_blocks(README.read_text())
    markers = {marker for marker, _ in blocks}
    assert markers <= {"", "norun"}, f"unknown sh block marker(s) in README.md: {markers - {'', 'norun'}}"
    skipped = [block for marker, block in blocks if marker == "norun"]
    assert len(skipped) <= MOST_NORUN_BLOCKS, f"{len(skipped)} sh blocks are marked norun: {skipped}"
    tour = [command for marker, block in blocks if marker == "" for command in block]
    assert len(tour) > 40, "the README tour lost its commands"
    workdir, logs = tmp_path / "reader", tmp_path / "logs"
    workdir.mkdir()
    logs.mkdir()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PULSECHECK_")}
    env.update(PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", PULSECHECK_NOW=NOW)
    env.update(LOGNAME="reader", USER="reader")  # a login that is not in the team: the tour says --as USER
    env.update(HOME=str(tmp_path), TMPDIR=str(tmp_path), COLUMNS="120")
    subprocess.run(["bash", "-c", script(tour, logs)], cwd=workdir, env=env, timeout=900, check=True)
    if (logs / "failed").exists():
        number = int((logs / "done").read_text()) + 1 if (logs / "done").exists() else 0
        status = (logs / "failed").read_text().strip()
        stderr = (logs / f"{number}.err").read_text().strip()
        pytest.fail(f"README command {number + 1} of {len(tour)} exited {status}: {tour[number]}\n{stderr}")
    assert int((logs / "done").read_text()) == len(tour) - 1
    noisy = {tour[n]: text for n in range(len(tour)) if (text := (logs / f"{n}.err").read_text())}
    assert not noisy, f"README commands that succeeded but wrote to stderr: {noisy}"
    outputs = "".join((logs / f"{n}.out").read_text() for n in range(len(tour)))
    from pulsecheck.app import os_login
    from pulsecheck.demo.story import TEAM

    known = 2 + sum(name == os_login() for name, _, _ in TEAM)  # maria, bob, and `init`'s admin if in the file
    for promised in (  # what the tour shows a reader, in what it printed
        f"users.csv: {8 - known} created, {known} updated",
        "review 1: approve -> approved",
        "wrote review-1.md",
        "FIRES drop-with-complaints",
        "escalation 1 acknowledged",
        "cadence smb: 2 review(s) opened",
        "ok: cycle 1: seal sha256",
        "wrote portfolio.html",
    ):
        assert promised in outputs, promised


def test_the_readme_shell_completion_line_completes_commands(tmp_path):
    line = next(
        command for _, block in sh_blocks(README.read_text()) for command in block if "_PULSECHECK_COMPLETE" in command
    )
    # What bash does on `pulsecheck users i<TAB>`: call the registered function with the words typed so far.
    typed = "COMP_WORDS=(pulsecheck users i); COMP_CWORD=2"
    probe = f'{line}\n{typed}\n_pulsecheck_completion pulsecheck\necho "${{COMPREPLY[@]}}"\n'
    env = dict(os.environ, PATH=f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}")
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["import", "invite"]
