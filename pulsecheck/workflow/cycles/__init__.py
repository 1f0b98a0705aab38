"""Portfolio review cycles (the SOP's controlled record), one module per part, each importing only those above it
in this list: `access` (the cycle, its steps and audit rows, the work guard), `records` (findings and decisions),
`seal` (digest and verification), `service` (start and the transitions), `trends` and `steps` (the seven step
runners), `views` (the JSON shapes of list, show and export). Callers may import the names below from here."""

from pulsecheck.workflow.cycles.access import events_of, get_cycle, period_bounds, steps_of
from pulsecheck.workflow.cycles.records import (
    FindingEdit,
    add_finding,
    close_finding,
    decide,
    decisions_of,
    edit_finding,
    finding_version,
    findings_of,
)
from pulsecheck.workflow.cycles.seal import sealed_content, verify
from pulsecheck.workflow.cycles.service import CycleSettings, start, transition
from pulsecheck.workflow.cycles.steps import run_step
from pulsecheck.workflow.cycles.views import cycle_dict, cycle_page, list_cycles, summary_dict

__all__ = [
    "CycleSettings",
    "FindingEdit",
    "add_finding",
    "close_finding",
    "cycle_dict",
    "decide",
    "decisions_of",
    "edit_finding",
    "events_of",
    "finding_version",
    "findings_of",
    "get_cycle",
    "cycle_page",
    "list_cycles",
    "period_bounds",
    "run_step",
    "sealed_content",
    "start",
    "steps_of",
    "summary_dict",
    "transition",
    "verify",
]
