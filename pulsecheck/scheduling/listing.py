"""The stored jobs as `scheduler jobs` lists them, read on SQLAlchemy Core from the job store's table: a read
command that imports neither the ORM nor APScheduler's job machinery (issue 17)."""

from __future__ import annotations

import pickle
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from sqlalchemy import select

from pulsecheck.storage.paging import Page, PageRequest, fetch_page
from pulsecheck.storage.tables import APSCHEDULER_JOBS

if TYPE_CHECKING:
    from sqlalchemy import Connection
    from sqlalchemy.orm import Session

_JOB = APSCHEDULER_JOBS.c
SORTS = {"next-run": (_JOB.next_run_time.is_(None), _JOB.next_run_time, _JOB.id), "id": (_JOB.id,)}


class JobRow(NamedTuple):
    """A stored job as `scheduler jobs` lists it."""

    id: str
    name: str
    next_run_time: datetime | None
    trigger: str


def job_page(db: Session | Connection, request: PageRequest, prefix: str | None = None) -> Page[JobRow]:
    """One page of stored jobs (soonest first by default, paused ones last), cut in SQL; only the page's jobs are
    unpickled. `prefix` keeps the jobs of one kind (`review-due:`)."""
    query = select(_JOB.id)
    if prefix:
        query = query.where(_JOB.id.startswith(prefix, autoescape=True))
    page = fetch_page(db, query, request, SORTS)
    if not page.items:  # nothing to unpickle: APScheduler (and its executors' multiprocessing) not imported
        return Page([], page.total, page.offset, page.limit)
    # Each job's stored state (`Job.__getstate__`, see `store.JobStore._row`) as it is: what a listing shows is in
    # it. A Job made of it (APScheduler's store) would also import the job's function, and with it the module of
    # every job and what they need (the outbox, every model class), to show a name and a date.
    read = db.execute(select(_JOB.id, _JOB.job_state).where(_JOB.id.in_(page.items)))
    states = {job_id: pickle.loads(state) for job_id, state in read}  # our own rows, unpickled as APScheduler does
    rows = [
        JobRow(state["id"], state["name"], state["next_run_time"], str(state["trigger"]))
        for state in (states.get(job_id) for job_id in page.items) if state is not None
    ]
    return Page(rows, page.total, page.offset, page.limit)
