"""`pulsecheck demo` (`make run`): a throwaway database and the sample portfolio, end to end."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from pulsecheck.app import install_hooks
from pulsecheck.config import Settings, SettingsFiles, load_settings
from pulsecheck.demo import MODEL, examples_dir
from pulsecheck.errors import PulsecheckError
from pulsecheck.safetext import strip_controls
from pulsecheck.storage.db import Database
from pulsecheck.storage.migrate import upgrade
from pulsecheck.storage.models import Account, User
from pulsecheck.workflow import account_views, reviews
from pulsecheck.workflow.accounts import import_accounts
from pulsecheck.workflow.review_form import ReviewForm, parse_form
from pulsecheck.workflow.users import import_users
from pulsecheck.yamlfile import load_file

# The sample data is dated around this moment; a fixed clock keeps the demo's story the same every run.
DEMO_NOW = datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
TEAM = [  # name, roles, manager: the people of samples/users.csv, which the demo imports (a test keeps them equal)
    ("maria", ["manager"], None),
    ("hank", ["manager"], None),
    ("bob", ["reviewer"], "maria"),
    ("alice", ["reviewer"], "maria"),
    ("carol", ["reviewer"], "maria"),
    ("olga", ["ops"], None),
    ("diana", ["head_of_cs"], None),
    ("root", ["admin"], None),
]


# The demo's settings: notifications to a JSONL file, the escalation ladder, a monthly cadence for smb.
DEMO_CONFIG = """\
timezone = "Europe/Berlin"

[notifications]
channel = "file"

[notifications.file]
path = "{outbox}"

[scheduler]
reminder_every = "2d"
max_reminders = 2
evaluate = "0 6 * * *"

[escalation]
ladder = [{{role = "owner", after = "0d"}}, {{role = "manager", after = "2d"}}, {{role = "head_of_cs", after = "5d"}}]

[cadence.smb]
schedule = "monthly"
due_in = "14d"
"""


class Demo:
    """One demo run: prints each step and what the database says afterwards."""

    def __init__(
        self,
        database: Database,
        now: datetime,
        echo: Callable[[str], None],
        settings: Settings,
        workdir: Path | None = None,
    ) -> None:
        self.database = database
        self.workdir = workdir  # where the people's signing keys go; None: the demo signs nothing
        self.now = now
        self.echo = echo
        self.settings = settings

    def step(self, title: str) -> None:
        self.echo(f"\n== {title}")

    def act(self, review_id: int, event: str, actor: str, comment: str | None = None) -> None:
        """Fire an event and print the outcome, refusals included (they are part of the story)."""
        try:
            with self.database.transaction() as session:
                user = session.scalars(select(User).where(User.name == actor)).one()
                state = reviews.advance(session, review_id, event, user, self.now, comment=comment)
            self.echo(f"  {actor}: {event} -> {state}")
        except PulsecheckError as exc:
            self.echo(f"  {actor}: {event} refused: {exc}")

    def setup(self) -> None:
        self.step("Team and portfolio")
        with self.database.transaction() as session:
            team = import_users(session, examples_dir() / "users.csv", self.now)
            result = import_accounts(session, examples_dir() / "accounts.csv")
        self.echo(f"  users.csv: {team.created} users imported; accounts.csv: {result.created} accounts imported")
        if self.workdir is not None:
            self.signing_keys(self.workdir / "keys")

    def signing_keys(self, folder: Path) -> None:
        """Give each person an SSH key in `folder`, registered by root, and sign every sign-off with it."""
        from pulsecheck.storage.chain import SIGNER
        from pulsecheck.workflow.keys import KeySigner, add_key, create_key_file

        shutil.rmtree(folder, ignore_errors=True)
        paths = {name: folder / name for name, _, _ in TEAM}
        with self.database.transaction() as session:
            root = session.scalars(select(User).where(User.name == "root")).one()
            for name, path in paths.items():
                add_key(session, root, name, create_key_file(path, f"pulsecheck-demo:{name}"), self.now)
        self.database.sessions.configure(info={SIGNER: KeySigner(lambda: self.now, keys=paths)})
        self.echo(f"  {len(paths)} SSH signing keys in {folder}, registered: sign-offs are signed with them")

    def scoring(self, model: str = MODEL) -> None:
        """Import the inputs, approve `model` (a sample file) and score 13 weekly dates."""
        from pulsecheck.workflow import deviations as deviation
        from pulsecheck.workflow import finance, inputs, models, scoring

        self.step("Inputs, the approved scoring model, and 12 weeks of score history")
        tz = self.now.tzinfo
        assert tz is not None
        with self.database.transaction() as session:
            for name, load in (("readings.csv", inputs.import_readings), ("surveys.csv", inputs.import_surveys)):
                result = load(session, examples_dir() / name, tz, self.now)
                self.echo(f"  {name}: {result.created} rows imported")
            result = inputs.import_issues(session, examples_dir() / "issues.csv", tz)
            self.echo(f"  issues.csv: {result.created} issues imported")
            for name, rows in (
                ("cashflows.csv", finance.import_cashflows),  # the npv formula's C_t
                ("financials.csv", finance.import_financials),  # ltv's ARPU, CAC, cost to serve, tenure
            ):
                self.echo(f"  {name}: {rows(session, examples_dir() / name).created} rows imported")
            olga = session.scalars(select(User).where(User.name == "olga")).one()
            row = models.approve_model(session, examples_dir() / model, olga, self.now)
            self.echo(f"  model {row.version} of {model} approved by olga (sha256 {row.sha256[:12]})")
        for weeks_ago in range(12, -1, -1):
            with self.database.transaction() as session:
                run = scoring.score_portfolio(session, self.now - timedelta(weeks=weeks_ago), self.now)
        self.echo(
            f"  scored {run.scored} accounts at 13 weekly dates; today's buckets: "
            + ", ".join(f"{name} {count}" for name, count in sorted(run.buckets.items()))
        )
        with self.database.transaction() as session:
            names = deviation.account_names(session)
            for found in deviation.list_deviations(session, open_only=True):
                self.echo(
                    f"  deviation {found.id}: {names.get(found.account_id or 0, '-')} {found.kind} "
                    f"{found.subject}: {found.detail}"
                )
            account = session.scalars(select(Account).where(Account.external_id == "INITECH")).one()
            trend = account_views.account_trend(session, account.id, self.now)
        latest = trend["history"][-1]
        self.echo(
            f"  INITECH: {trend['sparkline']} now {latest['score']} ({latest['bucket']}), "
            f"{trend['direction']} over 30 days ({trend['change_30d']:+.1f})"
        )
        for kpi, delta in trend["contribution_changes"][:3]:
            self.echo(f"    since last week: {kpi} {delta:+.2f} points")

    def scorecard(self, account: str) -> None:
        """`pulsecheck scorecard ACCOUNT`: the same data and lines as the command."""
        from pulsecheck.workflow.scorecards import scorecard, terminal_lines

        self.step(f"The scorecard of {account}, as `pulsecheck scorecard {account}` prints it: areas of concern")
        with self.database.transaction() as session:
            data = scorecard(session, account, history=3)
        for line in terminal_lines(data):
            self.echo(f"  {strip_controls(line)}")

    def rules(self) -> None:
        from pulsecheck.rules.evaluator import explain
        from pulsecheck.workflow.evaluation import EvaluationSettings, account_facts, evaluate
        from pulsecheck.workflow.rulesets import activate, active_rules

        self.step("Escalation rules: activate examples/rules.yaml and evaluate the portfolio")
        with self.database.transaction() as session:
            olga = session.scalars(select(User).where(User.name == "olga")).one()
            row = activate(session, examples_dir() / "rules.yaml", olga, self.now)
            self.echo(f"  ruleset {row.name} activated by olga (sha256 {row.sha256[:12]})")
        report = evaluate(self.database, EvaluationSettings.from_settings(self.settings), self.now, self.now)
        self.echo(f"  {report.accounts} accounts, {len(report.firings)} firings, {len(report.actions)} actions:")
        for planned in report.actions:
            self.echo(f"    {planned.account:<10} {planned.rule:<23} {planned.action:<14} {planned.detail}")
        with self.database.transaction() as session:
            for review in reviews.list_reviews(session):
                if review.kind == "rule":
                    self.echo(
                        f"  review {review.id} of {review.account.external_id}: {review.state} "
                        f"{review.priority}, due {review.due_at:%Y-%m-%d}, reviewer {review.reviewer} "
                        f"({review.events[-1].event} by {review.events[-1].cause})"
                    )
            _, parsed = active_rules(session)
            acme = session.scalars(select(Account).where(Account.external_id == "ACME")).one()
            facts = account_facts(session, parsed, self.now, [acme.id])[acme.id]
        self.echo("  rules explain --account ACME:")
        for item in explain(parsed, facts):
            marks = ", ".join(
                f"{c['fact']} {c['op']} {c['expected']} ({c['actual']}: {c['result']})" for c in item["conditions"]
            )
            self.echo(f"    {'FIRES' if item['fires'] else 'no   '} {item['rule']}: {marks}")

    def review_life(self) -> int:
        """One review of ACME from draft to closed, with the refusals the guards give on the way."""
        self.step("A health review of ACME, from draft to closed")
        review_id = self.open_review("ACME", "bob")
        self.act(review_id, "submit", "bob")
        form = parse_form(load_file(examples_dir() / "review.yaml"), "review.yaml")
        self.fill(review_id, "bob", form)
        self.echo("  bob filled the template from examples/review.yaml (goals, 2 risks, 2 actions)")
        self.act(review_id, "submit", "bob")
        self.act(review_id, "approve", "bob", "looks fine to me")
        self.act(review_id, "reject", "maria", "Add the ARR at risk to the impact of risk 1")
        risks = [risk.model_dump() for risk in form.risks or []]
        risks[0]["impact"] = "240k ARR at risk if the renewal slips"
        self.fill(review_id, "bob", parse_form({"risks": risks}, "edit"))
        self.echo("  bob updated the impact of risk 1")
        self.act(review_id, "submit", "bob")
        self.act(review_id, "approve", "maria", "Agreed. Track the EBR outcome in the next review.")
        with self.database.transaction() as session:
            problems = reviews.verify(reviews.get_review(session, review_id))
        self.echo(f"  verify: {'signatures match' if not problems else '; '.join(problems)}")
        self.act(review_id, "close", "maria")
        self.audit_trail(review_id)
        return review_id

    def open_review(self, account: str, reviewer: str) -> int:
        """Open a draft review and print its reviewer, due date and baseline."""
        with self.database.transaction() as session:
            review = reviews.new_review(session, account, reviewer, self.now, timedelta(days=14))
            review_id, approver = review.id, review.approver
        self.echo(
            f"  review {review_id} opened (reviewer {reviewer}, approver {approver}, due {review.due_at:%Y-%m-%d}, "
            f"baseline {review.baseline_score} {review.baseline_bucket})"
        )
        return review_id

    def fill(self, review_id: int, actor: str, form: ReviewForm) -> None:
        """Write a (partial) review form as `actor`."""
        with self.database.transaction() as session:
            user = session.scalars(select(User).where(User.name == actor)).one()
            reviews.fill(session, review_id, form, user, self.now)

    def audit_trail(self, review_id: int) -> None:
        """Print the review's audit rows, one line each."""
        with self.database.transaction() as session:
            for event in reviews.get_review(session, review_id).events:
                comment = f": {event.comment}" if event.comment else ""
                self.echo(
                    f"  audit: {event.at:%Y-%m-%d %H:%M} {event.event:<8} {event.from_state or '-':>9} -> "
                    f"{event.to_state:<9} by {event.actor} ({event.cause}){comment}"
                )

    def cycle_and_report(self, outdir: Path) -> None:
        from pulsecheck.demo.cycle import run_demo_cycle
        from pulsecheck.reports.files import write_atomic
        from pulsecheck.reports.portfolio import render_html
        from pulsecheck.workflow.portfolio import build_portfolio

        run_demo_cycle(self.database, self.settings, self.now, self.echo, outdir)  # prints its own steps
        self.step("The portfolio report")
        priority = self.settings.priority_matrix()
        with self.database.transaction() as session:
            data = build_portfolio(session, self.now, priority, None)
        report = write_atomic(render_html(data, self.now), outdir / "portfolio.html")
        self.echo(f"  portfolio report: {report} (self-contained HTML: open it in a browser)")

    def scheduler(self, *days: int) -> None:
        import json
        from collections import Counter

        from pulsecheck.scheduling.runner import DISPATCH, run_due, runtime, start
        from pulsecheck.scheduling.store import list_jobs

        self.step("The scheduler: `scheduler run --once` as cron would run it, a few days apart")
        with self.database.transaction() as session:
            kinds = Counter(job.id.split(":")[0] for job in list_jobs(session, self.settings.tz))
        self.echo("  jobs the commands scheduled: " + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())))
        for offset in days:
            later = self.now + timedelta(days=offset)
            rt = runtime(self.database, self.settings, lambda later=later: later)  # type: ignore[misc]
            report = start(rt, later)
            added = f"reconcile added {', '.join(report.added)}; " if report.added else ""
            self.echo(f"  -- {later.astimezone(self.settings.tz):%a %Y-%m-%d %H:%M %Z} (+{offset} days): {added}")
            for run in run_due(rt, later):
                missed = f" ({run.missed} missed firings coalesced)" if run.missed and run.id != DISPATCH else ""
                self.echo(f"     {run.id:<26} {run.result}{missed}")
        outbox = Path(self.settings.notifications.channel_options("file").get("path", ""))
        lines = [json.loads(line) for line in outbox.read_text().splitlines()] if outbox.is_file() else []
        self.echo(f"  {outbox}: {len(lines)} notifications delivered to the file channel:")
        for kind, count in sorted(Counter(line["kind"] for line in lines).items()):
            people = sorted({line["recipient_name"] for line in lines if line["kind"] == kind})
            self.echo(f"    {count:>3} {kind:<20} to {', '.join(people)}")


# Demo users who sign in to the web app, with one shared demo password (a throwaway database only).
DEMO_WEB_USERS = (("bob", "reviewer"), ("alice", "reviewer"), ("maria", "manager"))
DEMO_PASSWORD = "pulsecheck-demo"


def web_passwords(database: Database, now: datetime, echo: Callable[[str], None]) -> None:
    """Give the demo's web users the demo password, set as an admin would with `users password`."""
    from pulsecheck.storage.models import User
    from pulsecheck.workflow.signin import set_password

    with database.transaction() as session:
        admin = User(name="demo", roles="admin")  # not stored: who sets the passwords
        for name, _ in DEMO_WEB_USERS:
            set_password(session, admin, name, DEMO_PASSWORD, now)
    echo(f"\n== Web sign-in\n  {', '.join(n for n, _ in DEMO_WEB_USERS)} can sign in to the web app")


def run_demo(workdir: Path, now: datetime, echo: Callable[[str], None]) -> Path:
    """Run the whole demo in a fresh SQLite database under `workdir`; returns the database path."""
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / "demo.db"
    for stale in workdir.glob("demo.db*"):
        stale.unlink()
    for stale in (workdir / "notifications.jsonl",):
        stale.unlink(missing_ok=True)
    config = workdir / "pulsecheck.toml"
    config.write_text(DEMO_CONFIG.format(outbox=(workdir / "notifications.jsonl").resolve()))
    settings = load_settings(db=f"sqlite:///{path}", config=str(config), env={}, files=SettingsFiles())
    database = Database(f"sqlite:///{path}")
    upgrade(database.engine)
    install_hooks(database, settings)
    echo(f"pulsecheck demo: database {path}, settings {config}")
    demo = Demo(database, now, echo, settings, workdir)
    demo.setup()
    demo.scoring()
    demo.scorecard("ACME")
    review_id = demo.review_life()
    demo.rules()
    demo.cycle_and_report(workdir.resolve())
    demo.scheduler(1, 3, 8)
    web_passwords(database, now, echo)
    echo(f"\nDone. Explore: pulsecheck --db sqlite:///{path} review show {review_id}")
    echo(
        f"The web app on this database: PULSECHECK_NOW={now.isoformat()} pulsecheck --db sqlite:///{path} "
        f"--config {config} serve\n  then open http://127.0.0.1:8000 and sign in as "
        + ", ".join(f"{name} ({role})" for name, role in DEMO_WEB_USERS)
        + f", password {DEMO_PASSWORD!r}"
    )
    database.dispose()
    return path
