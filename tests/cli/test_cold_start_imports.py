"""What a read command loads at start-up (issue 17): a SQLite read imports neither the migration tool nor the
PostgreSQL dialect and drivers, nor the rules engine, the scheduler, templates, charts or tables it does not use.
Behaviour, not timing: the modules are read from the child's `-X importtime` log."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import Factory

PULSECHECK = Path(sys.executable).with_name("pulsecheck")
# Never for a read on SQLite (asyncio is not listed: `import sqlalchemy.orm` itself loads it).
NEVER = ("alembic", "psycopg", "psycopg2", "asyncpg", "sqlalchemy.dialects.postgresql", "sqlalchemy.ext.asyncio",
         "durable", "rules", "apscheduler", "transitions", "jinja2", "pygal", "yaml", "markdown_it")


def imported(db_url: str, *args: str, cwd: Path | None = None, **extra_env: str) -> set[str]:
    """The modules `pulsecheck ARGS` imported (it must succeed)."""
    env = {**os.environ, "PULSECHECK_DATABASE_URL": db_url, "PYTHONDONTWRITEBYTECODE": "1", **extra_env}
    for name in ("PULSECHECK_USER", "PULSECHECK_CONFIG"):
        env.pop(name, None)
    done = subprocess.run([sys.executable, "-X", "importtime", str(PULSECHECK), *args], capture_output=True,
                          text=True, env=env, timeout=120, cwd=cwd)
    assert done.returncode == 0, done.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")
            and "|" in line and "self [us]" not in line}


def loaded(modules: set[str], name: str) -> bool:
    return any(module == name or module.startswith(name + ".") for module in modules)


@pytest.mark.parametrize("args", [("review", "show", "1", "--json"), ("review", "show", "1"),
                                  ("review", "list", "--json")])
def test_a_read_command_loads_only_what_it_uses(db_url: str, os_login_admin: str, factory: Factory,
                                                 args: tuple[str, ...]) -> None:
    factory.team()
    factory.review("ACME")
    modules = imported(db_url, *args)
    assert "pulsecheck.workflow.chaincheck" in modules  # the log is read (the command checked the chain)
    assert [name for name in NEVER if loaded(modules, name)] == []
    # On SQLAlchemy Core: not the ORM (which costs what the whole command may cost above `import sqlalchemy`),
    # nor the mapped classes, nor the commit hooks and what writes the audit chain.
    assert [name for name in ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.chain",
                              "pulsecheck.storage.bulk") if loaded(modules, name)] == []
    assert not loaded(modules, "pulsecheck.commands.scoring")  # only the command's own module
    assert not loaded(modules, "pulsecheck.scheduling.store")  # the commit hooks load their work when they run
    # The only setting is the database URL (PULSECHECK_DATABASE_URL), text for a text key: no settings validator
    # is built (pydantic imports its plugin loader when it builds the first one).
    assert not loaded(modules, "pydantic.plugin._loader")
    # Nor the typed settings models at all: the command reads no section a layer set (their defaults need none).
    assert not loaded(modules, "pydantic") and not loaded(modules, "pulsecheck.config.sections")
    assert not loaded(modules, "multiprocessing")  # `audit verify` forks; one review's chain status does not
    # The evaluator's batch writers and what they need (the outbox, the scoring model): not for reading a review;
    # nor the whole-chain walk and the SSH signature checks (the review's own entries are compared, unsigned).
    assert [name for name in ("pulsecheck.workflow.reviews.bulk", "pulsecheck.notifications.outbox",
                              "pulsecheck.scoring.model", "pulsecheck.workflow.chainwalk",
                              "pulsecheck.workflow.signoffs") if loaded(modules, name)] == []


@pytest.mark.parametrize(("args", "proof"), [
    (("review", "history", "1"), "pulsecheck.workflow.reviews"),
    (("review", "attachments", "1"), "pulsecheck.workflow.attachments"),
    (("review", "export", "1", "--format", "md"), "pulsecheck.reports.review"),
    (("review", "verify", "1"), "pulsecheck.workflow.signoffs"),
    (("audit", "verify"), "pulsecheck.workflow.chainwalk"),
])
def test_these_reads_are_on_core(db_url: str, os_login_admin: str, factory: Factory, args: tuple[str, ...],
                                      proof: str) -> None:
    factory.team()
    factory.review("ACME")
    modules = imported(db_url, *args)
    assert proof in modules  # the log is read (the command did its work)
    assert [name for name in ("sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.chain")
            if loaded(modules, name)] == []


def test_listing_no_jobs_loads_no_scheduler(db_url: str, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    modules = imported(db_url, "scheduler", "jobs")
    assert "pulsecheck.scheduling.listing" in modules  # the command listed (nothing)
    assert not loaded(modules, "apscheduler") and not loaded(modules, "multiprocessing")
    # a read on SQLAlchemy Core: not the ORM, which costs what the whole command may cost above `import sqlalchemy`
    assert not loaded(modules, "sqlalchemy.orm") and not loaded(modules, "pulsecheck.storage.models")


def test_listing_jobs_reads_their_stored_state_only(db_url: str, os_login_admin: str, factory: Factory) -> None:
    factory.team()
    env = {**os.environ, "PULSECHECK_DATABASE_URL": db_url}
    env.pop("PULSECHECK_CONFIG", None)
    factory.account("GLOBEX", owner="bob", manager="maria")
    for account in ("ACME", "GLOBEX"):  # through the CLI: its commit hooks store the reviews' jobs
        done = subprocess.run([str(PULSECHECK), "--as", "bob", "review", "new", account], capture_output=True,
                              text=True, env=env, timeout=120)
        assert done.returncode == 0, done.stderr
    modules = imported(db_url, "scheduler", "jobs")
    # Not the jobs' functions, nor what they import (the outbox, every model class, the review services).
    assert [name for name in ("pulsecheck.scheduling.jobs", "pulsecheck.notifications.outbox",
                              "pulsecheck.storage.more_models", "pulsecheck.workflow.reviews.lifecycle",
                              "sqlalchemy.orm", "pulsecheck.storage.models", "pulsecheck.storage.chain")
            if loaded(modules, name)] == []
    done = subprocess.run([str(PULSECHECK), "scheduler", "jobs", "--json", "--sort", "id"], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    listed = json.loads(done.stdout)["items"]
    # What APScheduler's own job store makes of the same rows.
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from sqlalchemy import create_engine

    engine = create_engine(db_url)
    store = SQLAlchemyJobStore(engine=engine)
    store._scheduler, store._alias = BackgroundScheduler(), "default"
    jobs = sorted(store.get_all_jobs(), key=lambda job: job.id)
    engine.dispose()
    assert len(jobs) >= 2  # one job per review at least
    assert listed == [{"id": job.id, "name": job.name, "trigger": str(job.trigger),
                       "next_run_time": job.next_run_time.isoformat()} for job in jobs]


def test_no_settings_file_no_toml_parser(db_url: str, os_login_admin: str, factory: Factory, tmp_path: Path) -> None:
    factory.team()
    # no system, user or project file: nothing to parse
    modules = imported(db_url, "review", "list", "--json", cwd=tmp_path, PULSECHECK_SYSTEM_CONFIG="",
                       XDG_CONFIG_HOME=str(tmp_path / "config"))
    assert "pulsecheck.config.layers" in modules and not loaded(modules, "tomllib")


def test_every_command_is_in_the_cli_table() -> None:
    from pulsecheck.cli import COMMAND_MODULES, commands_of

    modules = {module for names in COMMAND_MODULES.values() for module in names}
    defined = {command.name for command in commands_of(*modules)}
    assert defined == set(COMMAND_MODULES)  # no command only the slow path finds, no name that finds nothing
    for name, names in COMMAND_MODULES.items():
        assert name in {command.name for command in commands_of(*names)}


def test_every_mapping_configures_and_every_table_is_in_the_metadata() -> None:
    from sqlalchemy.orm import configure_mappers

    from pulsecheck.storage.models import Account, Base, Escalation, PlainBase, SecondBase, declare_all

    declare_all()
    configure_mappers()
    mappers = [*PlainBase.registry.mappers, *Base.registry.mappers, *SecondBase.registry.mappers]
    assert all(m.configured for m in mappers)
    assert {m.class_.__table__.name for m in mappers} == set(Base.metadata.tables)
    assert Escalation.account.property.mapper.class_.__name__ == "Account"  # across registries
    assert Account.owner.property.mapper.class_.__name__ == "User"


def test_the_names_declared_on_first_use_are_the_classes_of_more_models() -> None:
    from pulsecheck.storage import models, more_models

    there = {name for name, value in vars(more_models).items()
             if isinstance(value, type) and value.__module__ == more_models.__name__}
    assert there == models.MORE
    assert all(getattr(models, name) is getattr(more_models, name) for name in models.MORE)


# In a fresh interpreter: the models module alone declares no class of `more_models`, yet every foreign key of its
# tables resolves (SQLAlchemy resolves them when it flushes a row: a score snapshot written by a command that never
# named a scoring model class); the first access to a class of `more_models` declares them all.
FRESH = """
import sys
from pulsecheck.storage import models

more = "pulsecheck.storage.more_models"
assert more not in sys.modules and "escalations" not in models.Base.metadata.tables
for table in models.Base.metadata.tables.values():
    for key in table.foreign_keys:
        assert key.column.table.name in models.Base.metadata.tables
assert more not in sys.modules
assert models.declared("Escalation") == ()
from pulsecheck.storage.models import Escalation
assert more in sys.modules and models.declared("Escalation") == (Escalation,)
assert Escalation.__table__ is models.Base.metadata.tables["escalations"]
assert set(models.declare_all().tables) >= {"escalations", "cycle_events", "web_secrets"}
"""


def test_the_other_classes_are_declared_on_first_use() -> None:
    done = subprocess.run([sys.executable, "-c", FRESH], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
