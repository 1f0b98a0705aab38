"""`pulsecheck demo` and the sample files it and `pulsecheck init --sample` use (package data, so a wheel has them)."""

from __future__ import annotations

import shutil
from pathlib import Path

from pulsecheck.errors import PulsecheckError

# The demo's scoring model (a sample file): the account scorecard of seed 003, with groups, NPV and LTV and a
# tracked `logins` KPI. `scoring.yaml` is the flat model the README tour starts with.
MODEL = "scorecard.yaml"


def examples_dir() -> Path:
    """The sample files, shipped as package data (so a wheel has them too)."""
    here = Path(__file__).resolve().parent / "samples"
    if not here.is_dir():
        raise PulsecheckError(f"sample files not found at {here}")
    return here


def copy_samples(target: Path) -> list[Path]:
    """Copy the sample files into `target` (for `pulsecheck init --sample DIR`); returns the files written.

    In a checkout, `examples` is a link to the samples themselves: those need no copy (and cannot take one).
    """
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(examples_dir().iterdir()):
        destination = target / path.name
        if destination.exists() and destination.samefile(path):
            continue
        if path.is_file():
            written.append(Path(shutil.copy(path, destination)))
        elif path.is_dir() and not path.name.startswith(("_", ".")):  # rules.tests/: the rules file's fixtures
            destination.mkdir(exist_ok=True)
            written += [
                Path(shutil.copy(item, destination / item.name)) for item in sorted(path.iterdir()) if item.is_file()
            ]
    return written
