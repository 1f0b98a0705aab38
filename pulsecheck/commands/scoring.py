"""readings, surveys, issues, model, score, deviations."""

from __future__ import annotations

from datetime import tzinfo
from typing import TYPE_CHECKING, Any

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import (
    App,
    emit_json,
    every_problem,
    file_format,
    import_options,
    json_option,
    owner_options,
    paged,
    parse_day,
    pass_app,
    print_page,
    table,
    whose,
)
from pulsecheck.errors import InputError
from pulsecheck.vocab import DEVIATION_SORTS

DEVIATION_STATUSES = ("open", "accepted", "resolved")

if TYPE_CHECKING:
    from pulsecheck.scoring.model import ScoringModel
    from pulsecheck.storage.paging import PageRequest


def _import_command(group: click.Group, noun: str) -> None:
    @group.command("import")
    @click.argument("file", type=click.Path(dir_okay=False))
    @import_options
    @pass_app
    def command(app: App, file: str, delimiter: str | None, decimal_comma: bool) -> None:
        from pulsecheck.workflow import finance, inputs

        fmt = file_format(app, delimiter, decimal_comma)
        with every_problem(file), app.transaction() as session:
            if noun == "cashflows":
                result = finance.import_cashflows(session, file, fmt)
            elif noun == "financials":
                result = finance.import_financials(session, file, fmt)
            elif noun == "readings":
                result = inputs.import_readings(session, file, app.settings.tz, app.now(), fmt)
            elif noun == "surveys":
                result = inputs.import_surveys(session, file, app.settings.tz, app.now(), fmt)
            else:
                result = inputs.import_issues(session, file, app.settings.tz, fmt)
        extra = f", {result.skipped} already stored" if result.skipped else ""
        click.echo(f"{file}: {result.created} {noun} created, {result.updated} updated{extra}")

    # set on the click command: the decorator read the (then empty) docstring already
    command.help = f"Import {noun} from CSV or JSON (all rows or none).\n\n{IMPORT_COLUMNS[noun]}"


FORMATS = (
    "Formats: CSV with a header row (UTF-8, a BOM and CRLF are fine; --delimiter, --decimal-comma) or JSON (a "
    "list of objects with the same keys). Times are ISO 8601; without a zone they are in the business time zone."
)
IMPORT_COLUMNS = {
    "readings": "Columns: account (external id), kpi, value (a number), observed_at (date or date-time), source "
    "(optional). A reading already stored (same account, kpi, time, value, source) is skipped.\n\n" + FORMATS,
    "surveys": "Columns: account, kind (nps, csat or ces), score, max_score (required but for nps, which defaults "
    "to 10), responded_at.\n\n" + FORMATS,
    "issues": "Columns: external_id (re-import updates by it), account, kind (complaint, billing, blocker or "
    "ticket), severity (low, medium, high, critical; default medium), status (open or closed; default open), "
    "opened_at, closed_at (optional), title (optional).\n\n" + FORMATS,
    "cashflows": "Columns: account, period (a whole number from 0, the npv formula's t), amount (a number; "
    "negative for money out). A re-import updates by (account, period).\n\n" + FORMATS,
    "financials": "Columns: account, arpu, cac, cost_to_serve (money per month or once, as the ltv formula says), "
    "expected_tenure_months (optional: months since contract_start), discount_rate (optional: the model's). "
    "A re-import updates by account.\n\n" + FORMATS,
}


@click.group()
def readings() -> None:
    """KPI readings (raw inputs, never overwritten)."""


@click.group()
def surveys() -> None:
    """Survey responses (NPS, CSAT, CES)."""


@click.group()
def issues() -> None:
    """Complaints, billing issues, blockers and tickets."""


@click.group()
def cashflows() -> None:
    """Account cash flows by period (account, period, amount): the inputs of the npv KPI."""


@click.group()
def financials() -> None:
    """Account financials (account, arpu, cac, cost_to_serve, expected_tenure_months, discount_rate): ltv inputs."""


for _group, _noun in (
    (readings, "readings"), (surveys, "surveys"), (issues, "issues"), (cashflows, "cashflows"),
    (financials, "financials"),
):  # fmt: skip
    _import_command(_group, _noun)


@click.group()
def model() -> None:
    """Scoring model files and their approval."""


@model.command("validate")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def model_validate(app: App, file: str) -> None:
    """Report every problem in a scoring model FILE."""
    from pulsecheck.workflow.models import read_model_file

    with every_problem(file):
        _, parsed = read_model_file(file, app.settings.yaml_limits())
    click.echo(f"{file}: ok (version {parsed.version}, {len(parsed.kpis)} KPIs, {len(parsed.buckets)} buckets)")


@model.command("approve")
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def model_approve(app: App, file: str) -> None:
    """Approve FILE as the scoring model (manager or ops); the previous version retires."""
    from pulsecheck.workflow.models import approve_model

    with app.transaction() as session:
        row = approve_model(session, file, app.actor(session), app.now(), app.settings.yaml_limits())
        said = f"model {row.version} approved by {row.approved_by} (sha256 {row.sha256[:12]})"
    click.echo(said)


@model.command("show")
@json_option
@pass_app
def model_show(app: App, as_json: bool) -> None:
    """The approved model: weights, buckets, and the history of versions."""
    from pulsecheck.workflow.models import approved_model, model_versions

    with app.reading() as connection:
        row, parsed = approved_model(connection)
        sha256, approved_by = row.sha256, row.approved_by
        versions = [
            {
                "version": v.version,
                "status": v.status,
                "sha256": v.sha256,
                "approved_by": v.approved_by,
                "approved_at": v.approved_at.isoformat() if v.approved_at else None,
            }
            for v in model_versions(connection)
        ]
    if as_json:
        emit_json({"version": parsed.version, "sha256": sha256, "model": parsed.canonical(), "versions": versions})
        return
    click.echo(f"approved model {parsed.version} (sha256 {sha256[:12]}, by {approved_by})")
    _model_tables(parsed, versions, app.settings.tz)


def _model_tables(parsed: ScoringModel, versions: list[dict[str, Any]], tz: tzinfo) -> None:
    """The KPIs, buckets and versions of `model show`."""
    from pulsecheck.scoring.model import duration_text

    rows = [
        (
            k.name,
            f"{k.weight:g}" if k.scored else "0 (tracked)",
            "-" if k.scale is None else f"{k.scale.min:g}..{k.scale.max:g}",
            k.from_surveys or (f"formula {k.formula}" if k.formula else "reading"),
            duration_text(k.max_age) if k.max_age else "-",
        )
        for k in parsed.kpis
    ]
    if parsed.groups:
        table([(*row, k.group or "-") for row, k in zip(rows, parsed.kpis, strict=True)],
              ["kpi", "weight", "scale", "source", "max age", "group"])  # fmt: skip
    else:
        table(rows, ["kpi", "weight", "scale", "source", "max age"])
    table(
        [(b.name, "-" if b.below is None else f"< {b.below:g}", b.color) for b in parsed.buckets],
        ["bucket", "threshold", "color"],
    )
    table(
        [(v["version"], v["status"], str(v["sha256"])[:12], v["approved_by"], h.when(v["approved_at"], tz))
         for v in versions],
        ["version", "status", "sha256", "approved by", "at"],
        title="versions",
    )


@model.command("check")
@click.argument("file", type=click.Path(dir_okay=False), required=False)
@json_option
@pass_app
def model_check(app: App, file: str | None, as_json: bool) -> None:
    """Compare FILE (default: config [scoring] model) with the approved model; differences are deviations."""
    from pulsecheck.errors import RefusedError
    from pulsecheck.workflow.models import check_model, read_model_file

    live = file or app.settings.scoring.model
    if not live:
        raise InputError("no live model file: pass FILE or set [scoring] model in pulsecheck.toml")
    _, parsed = read_model_file(live, app.settings.yaml_limits())
    with app.transaction() as session:
        differences = check_model(session, parsed, app.now())
    if as_json:
        emit_json({"file": live, "matches": not differences, "differences": differences})
    else:
        for line in differences:
            click.echo(f"DIFF {line}")
        if not differences:
            click.echo(f"{live}: matches the approved model")
    if differences:
        raise RefusedError(
            f"{live} differs from the approved model in {len(differences)} place(s): "
            "recorded as a model_mismatch deviation"
        )


@click.command()
@click.option("--as-of", "as_of", metavar="DATE", help="Score as of the end of DATE (default: now).")
@click.option("--account", help="Only this account.")
@json_option
@pass_app
def score(app: App, as_of: str | None, account: str | None, as_json: bool) -> None:
    """Score every account with the approved model: snapshots, buckets, deviations."""
    from pulsecheck.workflow.accounts import get_account
    from pulsecheck.workflow.scoring import score_portfolio

    when = app.now()
    if as_of:
        when = app.end_of_day(parse_day(as_of, "--as-of"))
    with app.transaction() as session:
        account_id = get_account(session, account).id if account else None
        run = score_portfolio(session, when.astimezone(app.now().tzinfo), app.now(), account_id)
    data = {
        "as_of": run.as_of.isoformat(),
        "model_version": run.model_version,
        "accounts": run.accounts,
        "scored": run.scored,
        "provisional": run.provisional,
        "buckets": run.buckets,
        "deviations": run.deviations,
    }
    if as_json:
        emit_json(data)
        return
    click.echo(
        f"scored {run.scored:,}/{run.accounts:,} accounts as of {h.when(run.as_of, app.settings.tz)} with model "
        f"{run.model_version} ({run.provisional:,} provisional)"
    )
    click.echo("buckets: " + (", ".join(f"{name} {count:,}" for name, count in sorted(run.buckets.items())) or "-"))
    click.echo("deviations: " + h.word(run.deviations))


@click.group()
def deviations() -> None:
    """Data and model findings."""


@deviations.command("list", epilog="Example: pulsecheck deviations list --open --kind stale --mine")
@click.option("--open", "open_only", is_flag=True, help="Only open and accepted ones.")
@click.option("--status", type=click.Choice(DEVIATION_STATUSES), help="Only this status.")
@click.option("--account", help="Only deviations of this account.")
@click.option("--kind", help="Only this kind (stale, missing, duplicate, model_mismatch, ...).")
@owner_options("the owner of the account")
@paged(DEVIATION_SORTS)
@json_option
@pass_app
def deviations_list(
    app: App, open_only: bool, status: str | None, account: str | None, kind: str | None, owner: str | None,
    mine: bool, page: PageRequest, as_json: bool,
) -> None:
    """List deviations, newest first."""
    from pulsecheck.workflow.account_views import find_account
    from pulsecheck.workflow.deviation_views import deviation_page

    statuses = (status,) if status else ("open", "accepted") if open_only else None
    with app.reading() as connection:
        account_id = find_account(connection, account).id if account else None
        found = deviation_page(
            connection, page, statuses=statuses, account_id=account_id, kind=kind,
            owner=whose(app, connection, owner, mine),
        )
    print_page(
        found, as_json,
        lambda d: (d["id"], d["account"], d["kind"], d["subject"], d["status"], d["detail"]),
        ["id", "account", "kind", "subject", "status", "detail"],
    )


@deviations.command("accept")
@click.argument("deviation_id", type=int)
@click.option("--reason", required=True, help="Why the deviation is acceptable (kept with it).")
@click.option("--until", "until", required=True, metavar="DATE", help="Accepted until DATE (YYYY-MM-DD).")
@pass_app
def deviations_accept(app: App, deviation_id: int, reason: str, until: str) -> None:
    """Accept a deviation until DATE (manager); it reopens after that if the cause persists."""
    from pulsecheck.workflow import deviations as deviation

    with app.transaction() as session:
        deviation.accept(session, deviation_id, app.actor(session), reason, parse_day(until, "--until"), app.now())
    click.echo(f"deviation {deviation_id} accepted until {until}")


COMMANDS = [readings, surveys, issues, cashflows, financials, model, score, deviations]
