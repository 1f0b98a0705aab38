"""Keeping the stored jobs in step with the rows: the commit hook (`install`) and `reconcile`.

Commands never call the scheduler: a session hook (`install`) looks at the reviews and escalations a transaction
touched and adds, moves or removes their jobs in that same transaction. `reconcile` recomputes every job at
scheduler start and repairs what is missing or stale. Both compare the fingerprint stored beside each job with the
wanted one (see `specs`) and write only the jobs that changed: `apply` reads the fingerprints and writes in bulk;
`keyed`, which the hook uses for a transaction's few jobs, lets one upsert compare them (no read first).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from pulsecheck.storage.models import Review, ReviewEvent, declared

if TYPE_CHECKING:  # specs and store (and the outbox they use) load at the first commit that moves a job
    from pulsecheck.config import Settings
    from pulsecheck.scheduling.specs import JobSpec, ScheduleSettings
    from pulsecheck.scheduling.store import JobStore
    from pulsecheck.storage.db import Database


@dataclass
class SyncReport:
    """What `apply` did: job ids added, replaced and removed, and how many stored jobs were already right."""

    added: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    kept: int = 0


def apply(
    session: Session,
    store: JobStore,
    wanted: Mapping[str, JobSpec | None],
    now: datetime,
    stored: Mapping[str, str | None] | None = None,
) -> SyncReport:
    """Make the stored jobs match `wanted` (None: no such job), in bulk; equal jobs keep their next run time.
    `stored` is the stored fingerprints, when the caller has already read them."""
    if stored is None:
        from pulsecheck.scheduling.store import fingerprints

        stored = fingerprints(session, wanted)
    report = SyncReport()
    added: list[JobSpec] = []
    replaced: list[JobSpec] = []
    for job_id, spec in wanted.items():
        if spec is None:
            if job_id in stored:
                report.removed.append(job_id)
        elif stored.get(job_id) == spec.fingerprint:
            report.kept += 1
        elif job_id in stored:
            replaced.append(spec)
            report.replaced.append(job_id)
        else:
            added.append(spec)
            report.added.append(job_id)
    store.write(added, now, new=True)
    store.write(replaced, now, new=False)
    store.remove(report.removed)
    return report


KEYED = 16  # up to this many jobs, the commit hook writes them keyed (`keyed`) rather than read-then-write


def keyed(store: JobStore, wanted: Mapping[str, JobSpec | None], now: datetime) -> None:
    """What `apply` does for a few jobs, in one upsert and one delete and no read: a job whose stored fingerprint
    equals the wanted one is left alone (keeping its next run time), a missing or stale one is written, an
    unwanted one is deleted."""
    store.upsert([spec for spec in wanted.values() if spec is not None], now)
    store.delete([job_id for job_id, spec in wanted.items() if spec is None])


def install(database: Database, settings: Settings) -> None:
    """Keep jobs in step with every review and escalation that a transaction of `database` writes."""
    from pulsecheck.storage.hooks import before_commit

    mover: list[Callable[[Session, list[Any], list[Any]], None]] = []  # `_mover`, at the first commit moving a job

    # Escalations once their class is declared (`models.declared`): a command that wrote none declares none.
    def touched(session: Session) -> list[Any]:
        kinds: tuple[type[Any], ...] = (Review, ReviewEvent, *declared("Escalation"))
        return [obj for obj in (*session.new, *session.dirty) if isinstance(obj, kinds)]

    def sync(session: Session, objects: list[Any]) -> None:
        kinds: tuple[type[Any], ...] = (Review, *declared("Escalation"))
        jobs = [obj for obj in objects if isinstance(obj, kinds)]
        if not jobs:  # audit rows alone (an event of a review this transaction did not change): no job moves
            return
        if not mover:
            mover.append(_mover(settings))
        mover[0](session, objects, jobs)

    def accept(obj: object) -> bool:  # a row written by a Core statement that may move a job
        kinds: tuple[type[Any], ...] = (Review, ReviewEvent, *declared("Escalation"))
        return isinstance(obj, kinds)

    before_commit(database, "schedule", touched, sync, accept=accept)


def _mover(settings: Settings) -> Callable[[Session, list[Any], list[Any]], None]:
    """What moves the jobs of a commit's reviews and escalations, made once per process at the first commit that
    moves one: `specs` and `store` imported then (not at start-up, and not at every commit: an import statement of
    a loaded module cost more than the rest of a keyed write's Python), and a copy of the settings validated before
    any work (it cannot fail inside the commit)."""
    from pulsecheck.scheduling.specs import ScheduleSettings, escalation_jobs, review_jobs
    from pulsecheck.scheduling.store import job_store

    cfg = ScheduleSettings.from_settings(settings)

    def move(session: Session, objects: list[Any], jobs: list[Any]) -> None:
        wanted: dict[str, JobSpec | None] = {}
        alone = _alone(objects)
        for obj in sorted(jobs, key=lambda o: (type(o).__name__, o.id)):
            if isinstance(obj, Review):
                wanted.update(review_jobs(session, obj, cfg, alone=obj.id in alone))
            else:
                wanted.update(escalation_jobs(obj, cfg))
        if len(wanted) <= KEYED:  # a transaction's few jobs (a review moved): keyed writes, no read first
            keyed(job_store(session, cfg.tz), wanted, settings.now())
        else:
            apply(session, job_store(session, cfg.tz), wanted, settings.now())

    return move


def _alone(objects: list[Any]) -> set[int]:
    """The reviews among `objects` that an event of this transaction moved out of a state other than closed and
    that share their account with no other review written in it. Such a review was its account's one review that
    is not closed (uq_reviews_open_account) when it moved, and closed is final: if it is closed now, no review of
    its account is open (`specs.review_jobs` need not ask)."""
    moved: set[int] = set()
    reviews: dict[int, set[int]] = {}  # by account (a review may come twice: its object and its written row)
    for obj in objects:  # one pass
        if isinstance(obj, ReviewEvent):
            if obj.from_state not in (None, "closed"):
                moved.add(obj.review_id)
        elif isinstance(obj, Review):
            reviews.setdefault(obj.account_id, set()).add(obj.id)
    return {review for ids in reviews.values() if len(ids) == 1 for review in ids if review in moved}


def reconcile(session: Session, cfg: ScheduleSettings, now: datetime) -> SyncReport:
    """Recompute every job from the rows: add what is missing, replace what is stale, remove what is orphaned."""
    from pulsecheck.scheduling.specs import changed_jobs
    from pulsecheck.scheduling.store import fingerprints, job_store

    stored = fingerprints(session)
    changed, kept = changed_jobs(session, cfg, stored)  # specs made only for the jobs missing or stale
    report = apply(session, job_store(session, cfg.tz), changed, now, stored)
    report.kept = kept
    return report
