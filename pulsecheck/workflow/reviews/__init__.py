"""Review services, one module per part, each importing only those above it in this list: `views` (the content
signatures cover, verification, the list and the JSON shapes), `lifecycle` (open and the state machine's
transitions), `template` (filling the template), `bulk` (opening and escalating many at once, for the evaluator).
Callers import the names below from here; the evaluator imports `bulk`'s from it, so that a command that reads a
review does not load what the batch writers need (the outbox, the scoring model).
"""

from pulsecheck.workflow.reviews.lifecycle import (
    SYSTEM_ACTOR,
    advance,
    escalate,
    get_review,
    new_review,
    open_review_for,
    reassign,
    transition,
)
from pulsecheck.workflow.reviews.template import add_action, add_risk, attach_file, fill, set_field
from pulsecheck.workflow.reviews.views import (
    ReviewFilter,
    content_of,
    event_dict,
    list_reviews,
    load_for_show,
    replayed_state,
    review_dict,
    review_page,
    review_rows,
    verify,
)

__all__ = [
    "SYSTEM_ACTOR",
    "ReviewFilter",
    "add_action",
    "advance",
    "add_risk",
    "attach_file",
    "content_of",
    "escalate",
    "event_dict",
    "fill",
    "get_review",
    "list_reviews",
    "review_rows",
    "load_for_show",
    "new_review",
    "reassign",
    "open_review_for",
    "replayed_state",
    "review_dict",
    "review_page",
    "set_field",
    "transition",
    "verify",
]
