"""Review services, one module per part, each importing only those above it in this list: `reading` (reviews read
on SQLAlchemy Core: the content signatures cover, the checks, the list, the JSON shapes), `views` (the same for
mapped reviews), `lifecycle` (open and the state machine's transitions), `template` (filling the template), `bulk`
(opening and escalating many at once, for the evaluator). Callers import the names below from here; each is loaded
with its module on first use (PEP 562 `__getattr__`), so that a command that reads reviews loads `reading` alone,
not the ORM nor what moves or fills one (the outbox, the commit hooks, the scoring model); the evaluator imports
`bulk`'s names from `bulk` itself.
"""

from typing import TYPE_CHECKING

# Where each name lives: `from pulsecheck.workflow.reviews import X` imports X's module, and only it.
_HOME = {
    **dict.fromkeys(
        ("SYSTEM_ACTOR", "advance", "escalate", "new_review", "open_review_for", "reassign", "transition"),
        "lifecycle",
    ),
    **dict.fromkeys(("add_action", "add_risk", "attach_file", "fill", "set_field"), "template"),
    **dict.fromkeys(
        ("content_of", "get_review", "list_reviews", "load_for_show", "review_dict", "review_rows", "verify"),
        "views",
    ),
    **dict.fromkeys(
        (
            "ReviewFilter", "event_dict", "must_exist", "read_review", "replayed_state", "review_events",
            "review_links", "review_page", "shown", "verification",
        ),
        "reading",
    ),
}

if TYPE_CHECKING:
    from pulsecheck.workflow.reviews.lifecycle import (  # noqa: I001 - one block: isort splits `as` re-exports apart
        SYSTEM_ACTOR as SYSTEM_ACTOR,
        advance as advance,
        escalate as escalate,
        new_review as new_review,
        open_review_for as open_review_for,
        reassign as reassign,
        transition as transition,
    )
    from pulsecheck.workflow.reviews.template import (
        add_action as add_action,
        add_risk as add_risk,
        attach_file as attach_file,
        fill as fill,
        set_field as set_field,
    )
    from pulsecheck.workflow.reviews.reading import (
        ReviewFilter as ReviewFilter,
        event_dict as event_dict,
        must_exist as must_exist,
        read_review as read_review,
        replayed_state as replayed_state,
        review_events as review_events,
        review_links as review_links,
        review_page as review_page,
        shown as shown,
        verification as verification,
    )
    from pulsecheck.workflow.reviews.views import (
        content_of as content_of,
        get_review as get_review,
        list_reviews as list_reviews,
        load_for_show as load_for_show,
        review_dict as review_dict,
        review_rows as review_rows,
        verify as verify,
    )
else:
    from pulsecheck.workflow import lazy_names

    __getattr__ = lazy_names(__name__, _HOME, globals())

