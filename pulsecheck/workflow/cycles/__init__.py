"""Portfolio review cycles (the SOP's controlled record), one module per part, each importing only those above it
in this list: `reading` (what is read of a cycle, on SQLAlchemy Core: its steps, findings, decisions and audit rows,
the list and the JSON shape of `cycle show`), `access` (the mapped cycle, the work guard, the audit row of a change),
`records` (findings and decisions), `seal` (digest and verification), `service` (start and the transitions),
`trends` and `steps` (the seven step runners), `views` (the JSON shape of `cycle export`). Callers import the names
below from here; each is loaded with its module on first use (PEP 562 `__getattr__`), so that `cycle list` and
`cycle show` load `reading` alone, and `cycle verify` and `cycle export` `seal` and `views` on Core, not the ORM
nor what changes a cycle."""

from typing import TYPE_CHECKING

# Where each name lives: `from pulsecheck.workflow.cycles import X` imports X's module, and only it.
_HOME = {
    **dict.fromkeys(
        ("cycle_page", "decisions_of", "events_of", "finding_version", "findings_of", "list_cycles", "read_cycle",
         "show_dict", "steps_of", "summary_dict"),
        "reading",
    ),
    **dict.fromkeys(("get_cycle", "period_bounds"), "access"),
    **dict.fromkeys(("FindingEdit", "add_finding", "close_finding", "decide", "edit_finding"), "records"),
    **dict.fromkeys(("sealed_content", "verify"), "seal"),
    **dict.fromkeys(("CycleSettings", "start", "transition"), "service"),
    "run_step": "steps",
    "cycle_dict": "views",
}

if TYPE_CHECKING:
    from pulsecheck.workflow.cycles.reading import (  # noqa: I001 - one block: isort splits `as` re-exports apart
        cycle_page as cycle_page,
        decisions_of as decisions_of,
        events_of as events_of,
        finding_version as finding_version,
        findings_of as findings_of,
        list_cycles as list_cycles,
        read_cycle as read_cycle,
        show_dict as show_dict,
        steps_of as steps_of,
        summary_dict as summary_dict,
    )
    from pulsecheck.workflow.cycles.access import get_cycle as get_cycle, period_bounds as period_bounds
    from pulsecheck.workflow.cycles.records import (
        FindingEdit as FindingEdit,
        add_finding as add_finding,
        close_finding as close_finding,
        decide as decide,
        edit_finding as edit_finding,
    )
    from pulsecheck.workflow.cycles.seal import sealed_content as sealed_content, verify as verify
    from pulsecheck.workflow.cycles.service import (
        CycleSettings as CycleSettings,
        start as start,
        transition as transition,
    )
    from pulsecheck.workflow.cycles.steps import run_step as run_step
    from pulsecheck.workflow.cycles.views import cycle_dict as cycle_dict
else:
    from pulsecheck.workflow import lazy_names

    __getattr__ = lazy_names(__name__, _HOME, globals())
