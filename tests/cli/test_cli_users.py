"""`pulsecheck users import`: CSV or JSON, all rows or none, managers anywhere in the file, re-import updates."""

from __future__ import annotations

import json

from sqlalchemy import select

from pulsecheck.app import os_login
from pulsecheck.demo import examples_dir
from pulsecheck.demo.story import TEAM
from pulsecheck.storage.models import User

FIXTURE_ADMIN = {"name": os_login(), "roles": ["admin"], "email": None, "manager": None, "webhook": None}


def users(run) -> dict[str, dict]:  # type: ignore[no-untyped-def]
    """The users listed, but for the admin the `run` fixture maps to the OS login (as long as no file changed it)."""
    result = run("users", "list", "--json")
    assert result.exit_code == 0, result.output
    return {u["name"]: u for u in json.loads(result.stdout)["items"] if u != FIXTURE_ADMIN}


def test_the_sample_team_imports_as_the_demo_knows_it_and_a_re_import_updates_it(run):
    sample = examples_dir() / "users.csv"
    result = run("users", "import", str(sample))
    assert result.exit_code == 0, result.output
    known = sum(name == os_login() for name, _, _ in TEAM)  # the sample's admin `root` is the tests' login in CI
    assert result.stdout == f"{sample}: {8 - known} created, {known} updated\n"
    assert {name: (u["roles"], u["manager"], u["email"]) for name, u in users(run).items()} == {
        name: (roles, manager, f"{name}@example.com") for name, roles, manager in TEAM
    }
    again = run("users", "import", str(sample))
    assert again.stdout == f"{sample}: 0 created, 8 updated\n"
    assert len(users(run)) == len(TEAM)


def test_a_re_import_replaces_roles_and_changes_only_the_columns_the_file_has(run, tmp_path):
    first = tmp_path / "team.csv"
    first.write_text(
        "name,roles,email,manager\nmaria,manager,maria@example.com,\nbob,reviewer;ops,bob@example.com,maria\n"
    )
    assert run("users", "import", str(first)).exit_code == 0
    second = tmp_path / "roles.csv"
    second.write_text("name,roles\nbob,reviewer\n")  # no email or manager column: those stay
    assert run("users", "import", str(second)).stdout == f"{second}: 0 created, 1 updated\n"
    bob = users(run)["bob"]
    assert (bob["roles"], bob["email"], bob["manager"]) == (["reviewer"], "bob@example.com", "maria")
    third = tmp_path / "clear.csv"
    third.write_text("name,roles,manager\nbob,reviewer,\n")  # an empty cell clears the value
    assert run("users", "import", str(third)).exit_code == 0
    assert users(run)["bob"]["manager"] is None


def test_a_bad_row_names_file_row_and_column_and_writes_nothing(run, tmp_path):
    assert run("users", "add", "maria", "--role", "manager", "--email", "maria@old.example").exit_code == 0
    bad = tmp_path / "team.csv"
    bad.write_text(
        "name,roles,email,manager\n"
        "maria,manager,maria@new.example,\n"
        "bob,reviewer,bob@example.com,maria\n"
        "carol,reveiwer,carol@example.com,maria\n"
    )
    result = run("users", "import", str(bad))
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr == (
        f"error: {bad}: row 4, column 'roles': unknown role 'reveiwer' (did you mean 'reviewer'?); "
        "choose from reviewer, manager, head_of_cs, ops, admin\n"
    )
    assert set(users(run)) == {"maria"}
    assert users(run)["maria"]["email"] == "maria@old.example"


def test_an_unknown_manager_or_a_bad_email_or_a_repeated_name_is_refused_with_its_place(run, tmp_path):
    cases = {
        "name,roles,manager\nbob,reviewer,mario\nmaria,manager,\n": (
            "row 2, column 'manager': unknown user 'mario' (did you mean 'maria'?)"
        ),
        "name,roles,email\nbob,reviewer,bob.example.com\n": "row 2, column 'email': 'bob.example.com' is not an email",
        "name,roles\nbob,reviewer\nbob,ops\n": "row 3, column 'name': 'bob' already given in row 2",
        "name,roles\nbob,\n": "row 2, column 'roles': value is required",
        "name,email\nbob,bob@example.com\n": "missing column(s): roles",
    }
    for number, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"case{number}.csv"
        path.write_text(text)
        result = run("users", "import", str(path))
        assert result.exit_code == 2, text
        assert result.stderr.startswith(f"error: {path}: {expected}"), result.stderr
    assert users(run) == {}


def test_a_manager_may_be_defined_later_in_the_same_file(run, tmp_path):
    path = tmp_path / "team.csv"
    path.write_text("name,roles,manager\nbob,reviewer,maria\nalice,reviewer,maria\nmaria,manager,\n")
    assert run("users", "import", str(path)).stdout == f"{path}: 3 created, 0 updated\n"
    assert {n: u["manager"] for n, u in users(run).items()} == {"bob": "maria", "alice": "maria", "maria": None}
    # The manager then approves: bob's review goes to maria.
    assert run("accounts", "import", str(_one_account(tmp_path))).exit_code == 0
    opened = run("--as", "bob", "review", "new", "ACME")
    assert opened.exit_code == 0, opened.output
    assert "approver maria" in opened.stdout


def logins(database) -> dict[str, str | None]:  # type: ignore[no-untyped-def]
    with database.transaction() as session:
        return {user.name: user.login for user in session.scalars(select(User).where(User.name != os_login()))}


def test_json_takes_a_list_of_roles_and_stores_logins(run, database, tmp_path):
    path = tmp_path / "team.json"
    path.write_text(
        json.dumps(
            [
                {"name": "bob", "roles": ["reviewer", "ops"], "manager": "maria", "login": "bsmith"},
                {"name": "maria", "roles": "manager;admin", "email": "maria@example.com", "login": "mrossi"},
            ]
        )
    )
    result = run("users", "import", str(path))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{path}: 2 created, 0 updated\n"
    found = users(run)
    assert found["bob"]["roles"] == ["ops", "reviewer"] and found["bob"]["manager"] == "maria"
    assert found["maria"]["roles"] == ["admin", "manager"] and found["maria"]["email"] == "maria@example.com"
    assert logins(database) == {"bob": "bsmith", "maria": "mrossi"}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"name": "bob", "roles": ["reviewer", 3]}]))
    refused = run("users", "import", str(bad))
    assert refused.exit_code == 2
    assert refused.stderr == f"error: {bad}: row 1, column 'roles': expected a list of role names\n"


def test_a_login_belongs_to_one_user_only(run, database, tmp_path):
    first = tmp_path / "team.csv"
    first.write_text("name,roles,login\nbob,reviewer,bsmith\nalice,reviewer,\n")
    assert run("users", "import", str(first)).exit_code == 0
    cases = {
        "name,roles,login\nalice,reviewer,bsmith\n": (
            "row 2, column 'login': 'bsmith' is already the login of user 'bob'"
        ),
        "name,roles,login\ncarol,reviewer,cw\ndan,reviewer,cw\n": "row 3, column 'login': 'cw' already given in row 2",
    }
    for number, (text, expected) in enumerate(cases.items()):
        path = tmp_path / f"case{number}.csv"
        path.write_text(text)
        result = run("users", "import", str(path))
        assert (result.exit_code, result.stderr) == (2, f"error: {path}: {expected}\n")
    assert logins(database) == {"bob": "bsmith", "alice": None}
    # Moving or swapping logins in one file is fine: the file says who has which now.
    moved = tmp_path / "moved.csv"
    moved.write_text("name,roles,login\nalice,reviewer,bsmith\nbob,reviewer,\n")
    result = run("users", "import", str(moved))
    assert result.exit_code == 0, result.stderr
    assert logins(database) == {"bob": None, "alice": "bsmith"}
    swapped = tmp_path / "swapped.csv"
    swapped.write_text("name,roles,login\nalice,reviewer,ajones\nbob,reviewer,bsmith\n")
    assert run("users", "import", str(swapped)).exit_code == 0
    swapped.write_text("name,roles,login\nalice,reviewer,bsmith\nbob,reviewer,ajones\n")
    result = run("users", "import", str(swapped))
    assert result.exit_code == 0, result.stderr
    assert logins(database) == {"bob": "ajones", "alice": "bsmith"}


def _one_account(tmp_path):  # type: ignore[no-untyped-def]
    path = tmp_path / "accounts.csv"
    path.write_text("external_id,name,owner\nACME,Acme Corp,bob\n")
    return path
