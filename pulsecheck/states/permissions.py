"""The one permission table: every action a person (or the scheduler, or a rule) can take, and who may take it.

Each action lists its grants; any one grant suffices. A grant is terms joined by `&`, all of which must hold:
a role the actor holds (`manager`), a relation of the actor to the record (`its_reviewer`: the review's reviewer,
`its_approver`: its assigned approver, `reviewer_manager`: the reviewer's manager, `its_owner`: the escalation's
or cycle's owner, `owner_manager`: that owner's manager, `self`: the user record is the actor's own), or what
caused it (`rule`: a rule escalation, `scheduler`: a scheduled job). Relations are named apart from the roles
(`reviewer` is a role, `its_reviewer` a relation) so that holding a role never passes for a relation.
Guards read the table through `refusal`; `tests/unit/test_permissions.py` checks every cell.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from functools import cache
from typing import NamedTuple

from pulsecheck.vocab import ROLES

RELATIONS = ("its_reviewer", "its_approver", "reviewer_manager", "its_owner", "owner_manager", "self")
CAUSES = ("rule", "scheduler")

PERMISSIONS: dict[str, tuple[str, ...]] = {
    # reviews (DESIGN.md section 5)
    "review.open": ("reviewer", "manager", "admin", "rule", "scheduler"),
    "review.edit": ("its_reviewer", "its_approver", "reviewer_manager", "admin"),
    "review.edit_manager_fields": ("its_approver", "reviewer_manager", "admin"),  # comments, priority, people
    "review.submit": ("its_reviewer",),
    "review.approve": ("manager & its_approver", "admin & its_approver"),
    "review.reject": ("manager & its_approver", "admin & its_approver", "manager & reviewer_manager"),
    "review.reopen": ("manager & its_approver", "manager & reviewer_manager", "admin", "rule"),
    "review.escalate": ("manager", "admin", "rule", "scheduler"),
    "review.close": ("its_reviewer", "its_approver", "reviewer_manager", "admin", "scheduler"),
    "review.withdraw": ("manager & its_approver", "manager & reviewer_manager", "admin"),
    "review.reassign": ("manager & reviewer_manager", "admin"),
    # portfolio review cycles
    "cycle.start": ("reviewer", "manager", "admin"),
    "cycle.work": ("its_owner", "manager", "admin"),  # steps, findings, decisions of a draft
    "cycle.submit": ("its_owner",),
    "cycle.approve": ("manager", "admin"),  # four-eyes (never the owner) is a guard of its own
    "cycle.reject": ("manager", "admin"),
    "cycle.close": ("its_owner", "manager", "admin"),
    # approved account scorecards (four-eyes, never the submitter, is a guard of its own)
    "scorecard.submit": ("reviewer", "manager", "admin"),
    "scorecard.approve": ("manager & its_approver", "admin & its_approver", "manager & reviewer_manager", "admin"),
    "scorecard.reject": ("manager & its_approver", "admin & its_approver", "manager & reviewer_manager", "admin"),
    # governance
    "model.approve": ("manager", "ops", "admin"),
    "rules.activate": ("ops", "manager", "admin"),
    "deviation.accept": ("manager", "admin"),
    "accounts.reassign": ("owner_manager", "admin"),  # a leaving owner's book: accounts, reviews, escalations
    "escalation.ack": ("its_owner", "owner_manager", "manager", "head_of_cs", "ops", "admin"),
    "escalation.resolve": ("its_owner", "owner_manager", "manager", "head_of_cs", "ops", "admin"),
    # people and keys
    "users.manage": ("admin",),  # add, import, roles, logins, managers, other people's email and webhook
    "users.edit_own_email": ("self", "admin"),
    "users.edit_own_webhook": ("self", "admin"),  # a user's own only to an allowed host (workflow/users.py)
    "keys.manage": ("self", "admin"),
    "tokens.manage": ("self", "admin"),  # API tokens: create, list and revoke one's own, or anyone's for an admin
    "users.password": ("self", "admin"),  # set a web sign-in password: one's own, or anyone's for an admin
    "users.invite": ("admin",),  # a one-time set-password link
    "act_as": ("admin",),  # --as / PULSECHECK_USER
    # operations
    "outbox.retry": ("ops", "admin"),
    "evaluate": ("ops", "admin", "scheduler"),
    "scheduler.run": ("ops", "admin"),
}

WORDS = {
    "its_reviewer": "the reviewer",
    "its_approver": "the assigned approver",
    "reviewer_manager": "the reviewer's manager",
    "its_owner": "the owner",
    "owner_manager": "the owner's manager",
    "self": "the user themself",
    "rule": "a rule escalation",
    "scheduler": "the scheduler",
}


class Actor(NamedTuple):  # not a dataclass, whose making costs every command's start-up more (issue 17)
    """Who acts on one record: their roles, their relations to it, and what caused the action."""

    name: str
    roles: frozenset[str] = frozenset()
    relations: frozenset[str] = frozenset()
    cause: str = "user"  # user | rule | scheduler
    parties: tuple[tuple[str, str], ...] = ()  # (relation, user name) of the record, to name them in a refusal

    def holds(self, term: str) -> bool:
        """Whether one term of a grant holds: a role, a relation to the record, or the cause."""
        return term in self.roles or term in self.relations or term == self.cause


def actor(
    name: str,
    roles: Collection[str],
    parties: Mapping[str, str | None] | None = None,
    managers: Mapping[str, str | None] | None = None,
    cause: str = "user",
) -> Actor:
    """The Actor `name` holding `roles`, related to a record whose parties are `parties` (see `relations_of`);
    a cause `rule:ID` counts as `rule`."""
    kind = "rule" if cause.startswith("rule") else cause
    named = tuple((relation, party) for relation, party in (parties or {}).items() if party and relation != "self")
    return Actor(name, frozenset(roles), relations_of(name, parties or {}, managers or {}), kind, named)


@cache
def grants(action: str) -> tuple[tuple[str, ...], ...]:
    """The grants of `action`, each a tuple of terms that must all hold (parsed once per action: every guard of
    every transition reads them)."""
    try:
        return tuple(tuple(t.strip() for t in grant.split("&")) for grant in PERMISSIONS[action])
    except KeyError:
        raise KeyError(f"no permission row for {action!r}") from None


def allowed(action: str, who: Actor) -> bool:
    """Whether any grant of `action` holds for `who`."""
    return any(all(who.holds(term) for term in grant) for grant in grants(action))


def describe(action: str, names: Mapping[str, str] | None = None) -> str:
    """Who may take `action`, in words: `the assigned approver (maria) with the manager role or an admin`;
    `names` maps a relation to the user who holds it on the record."""
    names = names or {}
    merged: dict[tuple[str, ...], list[str]] = {}  # grants that differ only in their role, said once
    for grant in grants(action):
        others = tuple(WORDS[t] + (f" ({names[t]})" if t in names else "") for t in grant if t not in ROLES)
        roles = [t for t in grant if t in ROLES]
        if others and others in merged and roles and merged[others]:
            merged[others].extend(roles)
        else:
            merged[others if others else (f"#{len(merged)}",)] = roles
    spoken = []
    for others, roles in merged.items():
        role = " or ".join(roles)
        if not others[0].startswith("#") and role:
            spoken.append(f"{' and '.join(others)} with the {role} role")
        elif role:
            spoken.append(f"an {role}" if role[0] in "aeiou" else f"a {role}")
        else:
            spoken.append(" and ".join(others))
    return spoken[0] if len(spoken) == 1 else f"{', '.join(spoken[:-1])} or {spoken[-1]}"


def refusal(action: str, who: Actor) -> str | None:
    """None when `who` may take `action`, else the reason in one line."""
    if allowed(action, who):
        return None
    verb = action.split(".")[-1].replace("_", " ")
    return f"only {describe(action, dict(who.parties))} may {verb}, not {who.name}"


def relations_of(name: str, parties: Mapping[str, str | None], managers: Mapping[str, str | None]) -> frozenset[str]:
    """The relations `name` has to a record whose parties are `parties` (relation -> user name, e.g.
    {"its_reviewer": "bob", "its_approver": "maria"}); `managers` maps a user to their manager."""
    found = {relation for relation, party in parties.items() if party and party == name}
    for relation, managed in (("its_reviewer", "reviewer_manager"), ("its_owner", "owner_manager")):
        party = parties.get(relation)
        if party and managers.get(party) == name:
            found.add(managed)
    return frozenset(found)


def check_table(roles: Collection[str] = ROLES) -> list[str]:
    """Every term of the table is a known role, relation or cause, and no relation shares a role's name."""
    known = set(roles) | set(RELATIONS) | set(CAUSES)
    clashes = [f"relation {r} is also a role" for r in RELATIONS if r in roles]
    unknown = [f"{a}: {t}" for a in PERMISSIONS for grant in grants(a) for t in grant if t not in known]
    return clashes + unknown
