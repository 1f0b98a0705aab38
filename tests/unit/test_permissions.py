"""The permission table, cell by cell: for every action and every representative actor, allowed or refused.

The expected table is written out by hand from the issue (who may do what), not derived from the code.
"""

from __future__ import annotations

import pytest

from pulsecheck.states import permissions
from pulsecheck.states.permissions import PERMISSIONS, Actor, refusal

# Representative actors: a role (or none) plus their relation to the record, or what caused the action.
ACTORS: dict[str, Actor] = {
    "reviewer": Actor("rita", frozenset({"reviewer"})),
    "manager": Actor("mo", frozenset({"manager"})),
    "head_of_cs": Actor("hedy", frozenset({"head_of_cs"})),
    "ops": Actor("otto", frozenset({"ops"})),
    "admin": Actor("ada", frozenset({"admin"})),
    "nobody": Actor("nemo"),
    "the reviewer": Actor("bob", frozenset({"reviewer"}), frozenset({"its_reviewer"})),
    "the approver": Actor("maria", frozenset({"manager"}), frozenset({"its_approver"})),
    "the approver, no longer a manager": Actor("maria", frozenset({"reviewer"}), frozenset({"its_approver"})),
    "the admin approver": Actor("ada", frozenset({"admin"}), frozenset({"its_approver"})),
    "the reviewer's manager": Actor("hank", frozenset({"manager"}), frozenset({"reviewer_manager"})),
    "the reviewer's manager, not a manager": Actor("hank", frozenset({"ops"}), frozenset({"reviewer_manager"})),
    "the owner": Actor("bob", frozenset({"reviewer"}), frozenset({"its_owner"})),
    "the owner's manager": Actor("hank", frozenset({"reviewer"}), frozenset({"owner_manager"})),
    "self": Actor("bob", frozenset({"reviewer"}), frozenset({"self"})),
    "a rule": Actor("pulsecheck", cause="rule"),
    "the scheduler": Actor("pulsecheck", cause="scheduler"),
}

# action -> the actors above who may take it; every other actor is refused.
REVIEW_PEOPLE = {"the reviewer", "the approver", "the approver, no longer a manager", "the admin approver",
                 "the reviewer's manager", "the reviewer's manager, not a manager"}
EXPECTED: dict[str, set[str]] = {
    "review.open": {"reviewer", "manager", "admin", "a rule", "the scheduler", "the reviewer", "the approver",
                    "the admin approver", "the approver, no longer a manager", "the reviewer's manager", "the owner",
                    "the owner's manager", "self"},
    "review.edit": REVIEW_PEOPLE | {"admin"},
    "review.edit_manager_fields": REVIEW_PEOPLE - {"the reviewer"} | {"admin"},
    "review.submit": {"the reviewer"},
    "review.approve": {"the approver", "the admin approver"},
    "review.reject": {"the approver", "the admin approver", "the reviewer's manager"},
    "review.reopen": {"the approver", "the reviewer's manager", "admin", "the admin approver", "a rule"},
    "review.escalate": {"manager", "admin", "a rule", "the scheduler", "the approver", "the admin approver",
                        "the reviewer's manager"},
    "review.close": REVIEW_PEOPLE | {"admin", "the scheduler"},
    "review.withdraw": {"the approver", "the reviewer's manager", "admin", "the admin approver"},
    "review.reassign": {"the reviewer's manager", "admin", "the admin approver"},
    "cycle.start": {"reviewer", "manager", "admin", "the reviewer", "the approver", "the admin approver",
                    "the approver, no longer a manager", "the reviewer's manager", "the owner",
                    "the owner's manager", "self"},
    "cycle.work": {"the owner", "manager", "admin", "the approver", "the admin approver", "the reviewer's manager"},
    "cycle.submit": {"the owner"},
    "cycle.approve": {"manager", "admin", "the approver", "the admin approver", "the reviewer's manager"},
    "cycle.reject": {"manager", "admin", "the approver", "the admin approver", "the reviewer's manager"},
    "cycle.close": {"the owner", "manager", "admin", "the approver", "the admin approver", "the reviewer's manager"},
    "scorecard.submit": {"reviewer", "manager", "admin", "the reviewer", "the approver", "the admin approver",
                         "the approver, no longer a manager", "the reviewer's manager", "the owner",
                         "the owner's manager", "self"},
    "scorecard.approve": {"admin", "the approver", "the admin approver", "the reviewer's manager"},
    "scorecard.reject": {"admin", "the approver", "the admin approver", "the reviewer's manager"},
    "model.approve": {"manager", "ops", "admin", "the approver", "the admin approver", "the reviewer's manager",
                      "the reviewer's manager, not a manager"},
    "rules.activate": {"manager", "ops", "admin", "the approver", "the admin approver", "the reviewer's manager",
                       "the reviewer's manager, not a manager"},
    "deviation.accept": {"manager", "admin", "the approver", "the admin approver", "the reviewer's manager"},
    # the leaving owner's own manager moves their book, or an admin; not any manager
    "accounts.reassign": {"the owner's manager", "admin", "the admin approver"},
    "escalation.ack": {"the owner", "the owner's manager", "manager", "head_of_cs", "ops", "admin", "the approver",
                       "the admin approver", "the reviewer's manager", "the reviewer's manager, not a manager"},
    "escalation.resolve": {"the owner", "the owner's manager", "manager", "head_of_cs", "ops", "admin",
                           "the approver", "the admin approver", "the reviewer's manager",
                           "the reviewer's manager, not a manager"},
    "users.manage": {"admin", "the admin approver"},
    "users.edit_own_email": {"self", "admin", "the admin approver"},
    "users.edit_own_webhook": {"self", "admin", "the admin approver"},
    "keys.manage": {"self", "admin", "the admin approver"},
    "tokens.manage": {"self", "admin", "the admin approver"},
    "users.password": {"self", "admin", "the admin approver"},
    "users.invite": {"admin", "the admin approver"},
    "act_as": {"admin", "the admin approver"},
    "outbox.retry": {"ops", "admin", "the admin approver", "the reviewer's manager, not a manager"},
    "evaluate": {"ops", "admin", "the admin approver", "the scheduler", "the reviewer's manager, not a manager"},
    "scheduler.run": {"ops", "admin", "the admin approver", "the reviewer's manager, not a manager"},
}
CELLS = [(action, name) for action in EXPECTED for name in ACTORS]


def test_the_expected_table_names_every_action_of_the_code_and_no_other() -> None:
    assert set(EXPECTED) == set(PERMISSIONS)
    assert all(allowed <= set(ACTORS) for allowed in EXPECTED.values())


def test_every_term_of_the_table_is_a_role_a_relation_or_a_cause() -> None:
    assert permissions.check_table() == []


@pytest.mark.parametrize(("action", "name"), CELLS, ids=[f"{a}|{n}" for a, n in CELLS])
def test_cell(action: str, name: str) -> None:
    reason = refusal(action, ACTORS[name])
    if name in EXPECTED[action]:
        assert reason is None
    else:
        assert reason is not None and reason.endswith(f"not {ACTORS[name].name}")


def test_a_role_never_passes_for_a_relation_of_the_same_word() -> None:
    # `reviewer` is a role; only the review's own reviewer submits it.
    assert refusal("review.submit", Actor("rita", frozenset({"reviewer"}))) == "only the reviewer may submit, not rita"


def test_refusals_name_the_people_of_the_record() -> None:
    diana = permissions.actor("diana", {"manager"}, {"its_reviewer": "bob", "its_approver": "maria"})
    assert refusal("review.approve", diana) == (
        "only the assigned approver (maria) with the manager or admin role may approve, not diana"
    )


def test_relations_come_from_the_records_parties_and_the_managers() -> None:
    managers = {"bob": "hank"}
    assert permissions.relations_of("hank", {"its_reviewer": "bob"}, managers) == {"reviewer_manager"}
    assert permissions.relations_of("hank", {"its_owner": "bob"}, managers) == {"owner_manager"}
    assert permissions.relations_of("bob", {"its_reviewer": "bob", "its_approver": "maria"}, managers) == {
        "its_reviewer"
    }
    assert permissions.actor("x", set(), cause="rule:drop").cause == "rule"
