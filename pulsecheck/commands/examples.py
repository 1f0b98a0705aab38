"""One example per command, shown at the end of its `--help` (click's epilog), in one table so that the help
reads the same everywhere and a test can check that no command lacks one. A command may carry its own epilog;
the table fills in the others when the CLI is assembled."""

from __future__ import annotations

from collections.abc import Iterator

import click

EXAMPLES: dict[str, str] = {
    "init": "pulsecheck init --sample .",
    "db upgrade": "pulsecheck db upgrade",
    "users add": "pulsecheck users add bob --role reviewer --manager maria --email bob@example.com",
    "users import": "pulsecheck users import users.csv",
    "accounts import": "pulsecheck accounts import accounts.csv --delimiter ';' --decimal-comma",
    "accounts show": "pulsecheck accounts show ACME --history 6",
    "readings import": "pulsecheck readings import readings.csv",
    "surveys import": "pulsecheck surveys import surveys.csv",
    "issues import": "pulsecheck issues import issues.json",
    "cashflows import": "pulsecheck cashflows import cashflows.csv",
    "financials import": "pulsecheck financials import financials.csv",
    "model validate": "pulsecheck model validate scoring.yaml",
    "model approve": "pulsecheck --as olga model approve scoring.yaml",
    "model show": "pulsecheck model show --json",
    "model check": "pulsecheck model check scoring.yaml",
    "score": "pulsecheck score --as-of 2026-10-31",
    "deviations accept": 'pulsecheck deviations accept 3 --reason "feed migrating" --until 2026-12-15',
    "rules validate": "pulsecheck rules validate rules.yaml",
    "rules activate": "pulsecheck --as olga rules activate rules.yaml",
    "rules show": "pulsecheck rules show --json",
    "rules explain": "pulsecheck rules explain --account ACME",
    "rules backtest": "pulsecheck rules backtest rules.yaml --from 2026-09-01 --to 2026-11-24",
    "evaluate": "pulsecheck evaluate --dry-run --account ACME",
    "review new": "pulsecheck review new ACME --due 2026-12-15 --priority P2",
    "review show": "pulsecheck review show 1",
    "review history": "pulsecheck review history 1 --json",
    "review attach": 'pulsecheck review attach 1 qbr.pdf --note "QBR deck"',
    "review attachments": "pulsecheck review attachments 1",
    "review attachment get": "pulsecheck review attachment get 1 1 -o qbr.pdf",
    "review set": "pulsecheck review set 1 next_review_date 2027-02-22",
    "review fill": "pulsecheck review fill 1 review.yaml",
    "review edit": "EDITOR=nano pulsecheck review edit 1",
    "review risk add": 'pulsecheck review risk add 1 "Budget freeze" --severity high --category customer',
    "review action add": 'pulsecheck review action add 1 "Meet the CFO" --risk 1 --owner bob --due 2026-12-20',
    "review submit": "pulsecheck review submit 1",
    "review approve": 'pulsecheck --as maria review approve 1 --comment "Agreed"',
    "review reject": 'pulsecheck --as maria review reject 1 --comment "Add the renewal risk"',
    "review reopen": 'pulsecheck --as maria review reopen 1 --comment "New complaint"',
    "review close": "pulsecheck review close 1",
    "review withdraw": 'pulsecheck --as maria review withdraw 1 --comment "Account churned"',
    "review reassign": 'pulsecheck review reassign 1 --approver diana --comment "maria on leave"',
    "review verify": "pulsecheck review verify 1",
    "review export": "pulsecheck review export 1 --format md -o review-1.md",
    "scheduler run": "pulsecheck scheduler run --once",
    "outbox dispatch": "pulsecheck outbox dispatch --limit 100",
    "outbox retry": "pulsecheck outbox retry 4 5",
    "cycle start": "pulsecheck cycle start --period 2026-11 --segment enterprise --owner bob",
    "cycle show": "pulsecheck cycle show 1",
    "cycle step": 'pulsecheck cycle step 1 scope --note "all enterprise accounts" --evidence scope.csv',
    "cycle decide": 'pulsecheck cycle decide 1 GLOBEX monitor --owner bob --reason "renewal signed"',
    "cycle finding add": 'pulsecheck cycle finding add 1 --kind data --detail "usage feed late" --owner olga',
    "cycle finding close": 'pulsecheck cycle finding close 3 --note "feed fixed"',
    "cycle submit": "pulsecheck cycle submit 1",
    "cycle approve": 'pulsecheck --as maria cycle approve 1 --comment "Agreed"',
    "cycle reject": 'pulsecheck --as maria cycle reject 1 --comment "Classify GLOBEX again"',
    "cycle close": "pulsecheck cycle close 1",
    "cycle verify": "pulsecheck cycle verify 1",
    "cycle export": "pulsecheck cycle export 1 --format html -o cycle-1.html",
    "report portfolio": "pulsecheck report portfolio --segment enterprise --html portfolio.html",
    "audit verify": "pulsecheck audit verify",
    "audit export": "pulsecheck audit export -o audit.jsonl",
    "demo": "pulsecheck demo",
    "config show": "pulsecheck config show --json",
    "keys add": "pulsecheck keys add ~/.ssh/id_ed25519.pub",
    "keys new": "pulsecheck keys new",
    "keys revoke": "pulsecheck keys revoke SHA256:abc123",
    "serve": "pulsecheck serve --host 0.0.0.0 --workers 2 --db postgresql://cs@db/pulsecheck",
    "users password": "pulsecheck users password bob",
    "users invite": "pulsecheck --as olga users invite bob",
    "worker": "pulsecheck worker --db postgresql://cs@db/pulsecheck",
    "users set": "pulsecheck users set bob --chat U024BE7LH --digest daily",
    "scorecard show": "pulsecheck scorecard show ACME --as-of 2026-10-31",
    "scorecard export": "pulsecheck scorecard export ACME --format html -o acme-scorecard.html",
    "scorecard submit": "pulsecheck scorecard submit ACME --attach scorecard.pdf --comment 'Q4 scorecard'",
    "scorecard approve": "pulsecheck --as maria scorecard approve 1 --comment 'agreed'",
    "scorecard reject": "pulsecheck --as maria scorecard reject 1 --comment 'NPS source is stale'",
    "tokens create": "pulsecheck tokens create ci-reader --scope read --expires 90",
    "tokens list": "pulsecheck tokens list",
    "tokens revoke": "pulsecheck tokens revoke 3",
}

# Options of command modules other work is reshaping (rules, evaluate) get their help here until they carry it.
OPTION_HELP: dict[tuple[str, str], str] = {
    ("evaluate", "as_of"): "Evaluate as of the end of DATE (YYYY-MM-DD; default: now).",
    ("evaluate", "account"): "Only this account (external id).",
    ("rules explain", "account"): "The account to explain (external id).",
    ("rules explain", "as_of"): "Facts as of the end of DATE (YYYY-MM-DD; default: now).",
    ("rules backtest", "start"): "First day of the replay (YYYY-MM-DD).",
    ("rules backtest", "end"): "Last day of the replay (YYYY-MM-DD).",
}


def commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, click.Command]]:
    """Every leaf command under `group` with its path (`review risk add`)."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from commands(command, (*path, name))
        else:
            yield " ".join((*path, name)), command


def attach(root: click.Group) -> None:
    """Give each command without an example the table's (as its epilog) and each option without help the
    table's; a command or option the tables do not know is left as it is (the help test names it)."""
    for path, command in commands(root):
        if path in EXAMPLES and "Example" not in (command.epilog or "") + (command.help or ""):
            command.epilog = f"Example: {EXAMPLES[path]}"
        for param in command.params:
            if isinstance(param, click.Option) and not param.help:
                param.help = OPTION_HELP.get((path, param.name or ""))
