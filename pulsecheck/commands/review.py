"""review: the health review template and its state machine."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from pulsecheck import humanize as h
from pulsecheck.commands.common import (
    App,
    emit_json,
    json_option,
    paged,
    parse_day,
    pass_app,
    print_page,
    show_markdown,
    table,
)
from pulsecheck.errors import RefusedError
from pulsecheck.vocab import PRIORITIES, REVIEW_KINDS, REVIEW_SORTS, REVIEW_STATES, RISK_CATEGORIES, SEVERITIES

if TYPE_CHECKING:
    from pulsecheck.storage.paging import PageRequest


@click.group()
def review() -> None:
    """Fill, sign and approve account health reviews."""


@review.command("new")
@click.argument("account")
@click.option("--reviewer", help="Default: the account owner.")
@click.option("--approver", help="Default: the reviewer's manager, else the account manager.")
@click.option("--due", metavar="DATE", help="Due date (YYYY-MM-DD); default from config review.due_in.")
@click.option("--priority", default="P3", show_default=True, type=click.Choice(PRIORITIES), help="How urgent.")
@pass_app
def review_new(
    app: App, account: str, reviewer: str | None, approver: str | None, due: str | None, priority: str
) -> None:
    """Open a draft review of ACCOUNT."""
    from pulsecheck.workflow.reviews import new_review

    due_at = app.end_of_day(parse_day(due, "--due")) if due else None
    with app.transaction() as session:
        actor = app.actor(session)
        created = new_review(
            session,
            account,
            actor.name,
            app.now(),
            app.settings.review.due_in,
            reviewer=reviewer,
            approver=approver,
            due=due_at,
            priority=priority,
        )
        said = (
            f"review {created.id} opened for {created.account.external_id} "
            f"(reviewer {created.reviewer}, approver {created.approver or '-'}, "
            f"due {h.day(created.due_at, app.settings.tz)})"
        )
    click.echo(said)


@review.command("list", epilog="Example: pulsecheck review list --state draft --mine --sort due")
@click.option("--state", type=click.Choice(REVIEW_STATES), help="Only reviews in this state.")
@click.option("--mine", is_flag=True, help="Only reviews where I am reviewer or approver.")
@click.option("--owner", metavar="U", help="Only reviews U is the reviewer of.")
@click.option("--account", help="Only reviews of this account.")
@click.option("--priority", type=click.Choice(PRIORITIES), help="Only this priority.")
@click.option("--kind", type=click.Choice(REVIEW_KINDS), help="Only reviews opened this way.")
@click.option("--due-before", metavar="DATE", help="Only those due before DATE (YYYY-MM-DD, business time zone).")
@paged(REVIEW_SORTS)
@json_option
@pass_app
def review_list(
    app: App, state: str | None, mine: bool, owner: str | None, account: str | None, priority: str | None,
    kind: str | None, due_before: str | None, page: PageRequest, as_json: bool,
) -> None:
    """List reviews, newest first."""
    from pulsecheck.timeutil import start_of_day
    from pulsecheck.workflow.reviews import ReviewFilter, review_page

    if owner and mine:
        raise click.UsageError("--owner and --mine: give one of them")
    before = start_of_day(parse_day(due_before, "--due-before"), app.settings.tz) if due_before else None
    tz = app.settings.tz
    with app.reading() as connection:
        account_id = None
        if account:
            from pulsecheck.workflow.reviews.reading import account_id_of

            account_id = account_id_of(connection, account)
        chosen = ReviewFilter(
            state, app.identity(connection).acting if mine else None, owner, account_id, priority, kind, before
        )
        found = review_page(connection, page, chosen)
    print_page(
        found, as_json,
        lambda r: (r["id"], r["account"], r["state"], h.review_kind(r["kind"]), r["priority"], r["reviewer"],
                   r["approver"], h.when(r["due_at"], tz)),
        ["id", "account", "state", "kind", "prio", "reviewer", "approver", "due"],
    )


@review.command("show")
@click.argument("review_id", type=int)
@json_option
@pass_app
def review_show(app: App, review_id: int, as_json: bool) -> None:
    """Show a review's template, signatures and state."""
    from pulsecheck.workflow.reviews import shown

    with app.reading() as connection:
        data = shown(connection, review_id)
    if as_json:
        emit_json(data)
    else:
        from pulsecheck.reports.review import review_markdown  # the Markdown renderer only for the text form

        show_markdown(review_markdown(data, app.settings.tz))


@review.command("history")
@click.argument("review_id", type=int)
@json_option
@pass_app
def review_history(app: App, review_id: int, as_json: bool) -> None:
    """The audit trail of a review."""
    from pulsecheck.workflow.reviews import event_dict, review_events

    with app.reading() as connection:
        data = [event_dict(e) for e in review_events(connection, review_id)]
    if as_json:
        emit_json(data)
        return
    tz = app.settings.tz
    table(
        [(h.when(e["at"], tz), e["event"], e["from"], e["to"], e["actor"], e["cause"], e["comment"]) for e in data],
        ["at", "event", "from", "to", "actor", "cause", "comment"],
    )


@review.command("attach")
@click.argument("review_id", type=int)
@click.argument("file")
@click.option("--note", metavar="T", help="What the file is (kept with it).")
@pass_app
def review_attach(app: App, review_id: int, file: str, note: str | None) -> None:
    """Store FILE in the database as an attachment of the review (signatures bind its sha256)."""
    from pulsecheck.workflow.attachments import read_upload
    from pulsecheck.workflow.reviews import attach_file

    upload = read_upload(file, app.settings.attachments.max_size, "FILE")
    with app.transaction() as session:
        link = attach_file(session, review_id, upload, app.actor(session), app.now(), note)
        said = f"review {review_id}: attachment {link.number} {link.filename} ({len(upload.content)} bytes, sha256 "
        said += f"{link.sha256})"
    click.echo(said)


@review.command("attachments")
@click.argument("review_id", type=int)
@json_option
@pass_app
def review_attachments(app: App, review_id: int, as_json: bool) -> None:
    """List a review's attachments."""
    from pulsecheck.workflow.reviews import review_links

    with app.reading() as connection:
        data = review_links(connection, review_id)
    if as_json:
        emit_json(data)
        return
    table(
        [(a["number"], a["filename"], f"{a['size']:,}", a["sha256"][:16], a["added_by"],
          h.when(a["added_at"], app.settings.tz), a["note"]) for a in data],
        ["#", "file", "bytes", "sha256", "added by", "added at", "note"],
    )


@review.group("attachment")
def review_attachment() -> None:
    """One attachment of a review."""


@review_attachment.command("get")
@click.argument("review_id", type=int)
@click.argument("number", type=int)
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@pass_app
def review_attachment_get(app: App, review_id: int, number: int, output: str | None) -> None:
    """Write attachment NUMBER of the review, byte for byte as stored (refused if the bytes changed since)."""
    from pulsecheck.reports.files import check_writable, write_atomic
    from pulsecheck.workflow.attachments import REVIEW, content
    from pulsecheck.workflow.reviews import must_exist

    if output:
        check_writable(output)
    with app.reading() as connection:
        must_exist(connection, review_id)
        _, data = content(connection, REVIEW, review_id, number, f"review {review_id}")
    if output:
        write_atomic(data, output)
        click.echo(f"wrote {output}")
    else:
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


@review.command("set")
@click.argument("review_id", type=int)
@click.argument("field")
@click.argument("value")
@pass_app
def review_set(app: App, review_id: int, field: str, value: str) -> None:
    """Set FIELD of the template to VALUE (empty text clears it)."""
    from pulsecheck.workflow.reviews import set_field

    with app.transaction() as session:
        set_field(session, review_id, field, value, app.actor(session), app.now(), tz=app.settings.tz)
    click.echo(f"review {review_id}: {field} set")


@review.command("fill")
@click.argument("review_id", type=int)
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def review_fill(app: App, review_id: int, file: str) -> None:
    """Fill a review from a YAML/JSON FILE (any template field; `risks` replaces all risks)."""
    from pulsecheck.workflow.review_form import parse_form
    from pulsecheck.workflow.reviews import fill
    from pulsecheck.yamlfile import load_file

    form = parse_form(load_file(file, app.settings.yaml_limits()), file)
    with app.transaction() as session:
        fill(session, review_id, form, app.actor(session), app.now())
    click.echo(f"review {review_id}: filled from {file}")


@review.command("edit")
@click.argument("review_id", type=int)
@pass_app
def review_edit(app: App, review_id: int) -> None:
    """Edit a review in $EDITOR as a YAML form. On an error the editor opens again with the error at the top and
    your text kept; saving it unchanged or empty gives up (nothing saved, your text kept in a file)."""
    from pulsecheck.errors import InputError, PulsecheckError
    from pulsecheck.workflow.review_form import render_form, with_error, without_error
    from pulsecheck.workflow.reviews import get_review, review_dict

    with app.transaction() as session:
        original = render_form(review_dict(get_review(session, review_id), with_history=False))
    offered, tried = original, None
    while True:
        edited = click.edit(offered, extension=".yaml", require_save=True)
        text = without_error(edited or "")
        if not text.strip() or text == original:
            click.echo("no change")
            return
        try:
            _save_edit(app, review_id, original, text)
            return
        except PulsecheckError as exc:
            if text == tried:  # saved again as it was: the user gives up; keep their work
                kind = InputError if exc.exit_code == 2 else RefusedError
                raise kind(f"{exc} (your edit is kept in {_keep(review_id, text)})") from None
            offered, tried = with_error(text, str(exc)), text


def _save_edit(app: App, review_id: int, original: str, text: str) -> None:
    """Validate the edited form (an error names the field) and save the fields that changed."""
    from pulsecheck.errors import InputError
    from pulsecheck.workflow.review_form import bad_date_field, parse_form
    from pulsecheck.workflow.reviews import fill
    from pulsecheck.yamlfile import load_text

    source = f"review {review_id} form"
    if problem := bad_date_field(text, source):
        raise InputError(problem)
    before = parse_form(load_text(original, source, app.settings.yaml_limits()), source)
    form = parse_form(load_text(text, source, app.settings.yaml_limits()), source)
    changed = {k for k in form.model_fields_set if getattr(form, k) != getattr(before, k)}
    if not changed:
        click.echo("no change")
        return
    form = form.model_copy(update={}, deep=True)
    form.__pydantic_fields_set__ = changed
    with app.transaction() as session:
        fill(session, review_id, form, app.actor(session), app.now())
    click.echo(f"review {review_id}: saved")


def _keep(review_id: int, text: str) -> str:
    """Write the user's edit to a file of its own (kubectl edit does the same) and return its path."""
    import os
    import tempfile

    handle, path = tempfile.mkstemp(prefix=f"pulsecheck-review-{review_id}-", suffix=".yaml")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    return path


@review.group("risk")
def review_risk() -> None:
    """Risks of a review."""


@review_risk.command("add")
@click.argument("review_id", type=int)
@click.argument("description")
@click.option("--evidence", help="What shows the risk (a fact, a link).")
@click.option("--category", default="customer", show_default=True, type=click.Choice(RISK_CATEGORIES),
              help="Whose risk: the customer's or ours.")
@click.option("--severity", default="medium", show_default=True, type=click.Choice(SEVERITIES),
              help="How bad if it happens.")
@click.option("--impact", help="What happens if it does.")
@pass_app
def review_risk_add(
    app: App,
    review_id: int,
    description: str,
    evidence: str | None,
    category: str,
    severity: str,
    impact: str | None,
) -> None:
    """Add a risk with DESCRIPTION."""
    from pulsecheck.workflow.reviews import add_risk

    with app.transaction() as session:
        risk = add_risk(
            session,
            review_id,
            app.actor(session),
            app.now(),
            description,
            evidence,
            category,
            severity,
            impact,
        )
        number = risk.number
    click.echo(f"review {review_id}: risk {number} added")


@review.group("action")
def review_action() -> None:
    """Mitigation actions of a review."""


@review_action.command("add")
@click.argument("review_id", type=int)
@click.argument("description")
@click.option("--risk", "risk_number", type=int, required=True, help="The risk number this action mitigates.")
@click.option("--owner", help="Who does it (a user name).")
@click.option("--due", metavar="DATE", help="When it is due (YYYY-MM-DD).")
@click.option("--success-criteria", help="How we know it worked.")
@pass_app
def review_action_add(
    app: App,
    review_id: int,
    description: str,
    risk_number: int,
    owner: str | None,
    due: str | None,
    success_criteria: str | None,
) -> None:
    """Add a mitigation action with DESCRIPTION to risk N."""
    from pulsecheck.workflow.reviews import add_action

    due_date = parse_day(due, "--due") if due else None
    with app.transaction() as session:
        action = add_action(
            session,
            review_id,
            app.actor(session),
            app.now(),
            risk_number,
            description,
            owner,
            due_date,
            success_criteria,
        )
        number = action.number
    click.echo(f"review {review_id}: action {number} added to risk {risk_number}")


def _event_command(event: str, help_text: str) -> click.Command:
    @click.argument("review_id", type=int)
    @click.option("--comment", help="A comment kept in the audit trail.")
    @pass_app
    def command(app: App, review_id: int, comment: str | None) -> None:
        from pulsecheck.workflow.reviews import advance

        with app.transaction() as session:
            state = advance(session, review_id, event, app.who(session), app.now(), comment=comment)
        click.echo(f"review {review_id}: {event} -> {state}")

    command.__doc__ = help_text
    return review.command(event)(command)


for _event, _help in (
    ("submit", "Submit a draft for approval (signs it as the reviewer)."),
    ("approve", "Approve a submitted review (its assigned approver; --comment fills the manager's comments)."),
    ("reject", "Send a submitted review back to draft (manager; --comment required)."),
    ("reopen", "Reopen an approved review to change it (its approver or the reviewer's manager; clears signatures)."),
    ("close", "Close an approved review (reviewer or manager)."),
    ("withdraw", "Withdraw a draft (manager; --comment required as the reason)."),
):
    _event_command(_event, _help)


@review.command("reassign")
@click.argument("review_id", type=int)
@click.option("--approver", required=True, help="The new approver (a manager, never the reviewer).")
@click.option("--comment", required=True, help="Why, kept in the audit trail.")
@pass_app
def review_reassign(app: App, review_id: int, approver: str, comment: str) -> None:
    """Move a draft or submitted review to another approver (the reviewer's manager or an admin)."""
    from pulsecheck.workflow.reviews import reassign

    with app.transaction() as session:
        reassign(session, review_id, approver, app.actor(session), app.now(), comment)
    click.echo(f"review {review_id}: approver {approver}")


@review.command("verify")
@click.argument("review_id", type=int)
@json_option
@pass_app
def review_verify(app: App, review_id: int, as_json: bool) -> None:
    """Check that signatures still match the content and the audit trail explains the state."""
    from pulsecheck.workflow.reviews import verification

    with app.reading() as connection:
        found, problems, signatures = verification(connection, review_id)
    signed = [who for who, by in (("employee", found.employee_signed_by), ("manager", found.manager_signed_by)) if by]
    if as_json:
        emit_json({"review": review_id, "ok": not problems, "signed": signed, "problems": problems,
                   "signatures": signatures})
    else:
        for line in signatures:
            click.echo(f"signed: {line}")
        for problem in problems:
            click.echo(f"FAIL {problem}")
        if not problems:
            click.echo(
                f"ok: review {review_id}: {', '.join(signed) or 'no'} signature(s) match, audit trail consistent"
            )
    if problems:
        raise RefusedError(f"review {review_id} failed verification ({len(problems)} problem(s))")


@review.command("export")
@click.argument("review_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["md", "html", "json"]), default="md", show_default=True,
              help="Markdown, one offline HTML page, or JSON.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
@pass_app
def review_export(app: App, review_id: int, fmt: str, output: str | None) -> None:
    """Export the filled template with the account, the baseline scorecard and the audit trail."""
    from pulsecheck.jsontext import readable_json
    from pulsecheck.reports.files import write_atomic
    from pulsecheck.reports.review import review_html, review_markdown
    from pulsecheck.workflow.reviews import shown

    with app.reading() as connection:
        data = shown(connection, review_id, with_history=True)
    if fmt == "json":
        text = readable_json(data) + "\n"
    else:
        text = review_html(data) if fmt == "html" else review_markdown(data)
    if output:
        write_atomic(text, output)  # whole or not at all; a FIFO, device or symlink is refused, not opened
        click.echo(f"wrote {output}")
    else:
        click.echo(text, nl=False)


COMMANDS = [review]
