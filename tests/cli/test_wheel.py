"""A built wheel works on its own: installed into a fresh virtualenv, `pulsecheck init --sample` and `pulsecheck
demo` run from an unrelated directory, with the sample files, templates and migrations that the wheel carries."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # builds a wheel and runs the demo: about half a minute

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "pulsecheck" / "demo" / "samples"


def run(*command: str | Path, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(c) for c in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"{' '.join(map(str, command))} exited {done.returncode}:\n{done.stderr[-3000:]}"
    return done


def can_build_without_isolation() -> bool:
    """The project's build backend (setuptools>=68 and wheel) is importable here, so no download is needed."""
    try:
        major = int(metadata.version("setuptools").split(".")[0])
        metadata.version("wheel")
    except metadata.PackageNotFoundError:
        return False
    return major >= 68


def build_wheel(tmp_path: Path) -> Path:
    """Build from a copy of the sources, so the checkout gets no build/ or egg-info droppings."""
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pulsecheck", source / "pulsecheck", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    isolation = ["--no-build-isolation"] if can_build_without_isolation() else []
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", ".", "--no-deps", *isolation, "-q", "-w", dist, cwd=source)
    (wheel,) = dist.glob("pulsecheck-*.whl")
    return wheel


def fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    """A virtualenv without system site-packages holding the wheel. Its dependencies come from this test's own
    environment through a .pth line (installing them from an index would be slow and need the network); a .pth
    line adds a directory without running the .pth files in it, so the checkout's editable install stays out."""
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=tmp_path)
    python = venv / "bin" / "python"
    purelib = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=tmp_path)
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib.stdout.strip()) / "project_dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=tmp_path)
    return venv


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_wheel_carries_every_file_of_the_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    files = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "pulsecheck").rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }
    assert files - names == set(), "add them to [tool.setuptools.package-data] in pyproject.toml"


def test_the_installed_wheel_runs_init_sample_and_the_demo_from_any_directory(wheel, tmp_path):
    venv = fresh_venv(tmp_path, wheel)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULSECHECK_") and k != "PYTHONPATH"}
    env.update(PULSECHECK_DATABASE_URL=f"sqlite:///{elsewhere / 'tour.db'}", PULSECHECK_USER="olga")

    found = run(venv / "bin" / "python", "-c", "import pulsecheck; print(pulsecheck.__file__)", cwd=elsewhere, env=env)
    assert Path(found.stdout.strip()).is_relative_to(venv), found.stdout  # the wheel's copy, not the checkout

    init = run(venv / "bin" / "pulsecheck", "init", "--sample", "samples", cwd=elsewhere, env=env)
    assert init.stdout.startswith("database ready: sqlite:///")
    expected = sorted(str(path.relative_to(SAMPLES)) for path in SAMPLES.rglob("*") if path.is_file())
    copied = elsewhere / "samples"
    assert sorted(str(path.relative_to(copied)) for path in copied.rglob("*") if path.is_file()) == expected
    assert "rules.tests/escalations.yaml" in expected  # the sample rules' fixtures come along
    for name in expected:
        assert (copied / name).read_bytes() == (SAMPLES / name).read_bytes(), name
    tested = run(venv / "bin" / "pulsecheck", "rules", "test", "samples/rules.yaml", cwd=elsewhere, env=env)
    assert tested.stdout.startswith("samples/rules.yaml: ") and " passed " in tested.stdout

    demo = run(venv / "bin" / "pulsecheck", "demo", "--dir", "out", cwd=elsewhere, env=env)
    assert "maria: approve -> approved" in demo.stdout and "verify: ok" in demo.stdout
    assert (elsewhere / "out" / "portfolio.html").read_text().lstrip().lower().startswith("<!doctype html")
    assert (elsewhere / "out" / "cycle-1.md").is_file()
