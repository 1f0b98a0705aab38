"""An account's scorecard as a document: Markdown (every value through `md_escape`) or one offline HTML page
(autoescaped template `scorecard.html.j2`, colours through `safe_color`, the report's Content-Security-Policy)."""

from __future__ import annotations

from typing import Any

from pulsecheck.errors import InputError
from pulsecheck.reports.markdown import md_cell, md_escape

FORMATS = ("md", "html")


def num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def scorecard_markdown(data: dict[str, Any]) -> str:
    """Markdown of `workflow.scorecards.scorecard`."""
    acc, vector = data["account"], data["success_vector"]
    out = [
        f"# Scorecard: {md_escape(acc['id'])} {md_escape(acc['name'])}",
        "",
        f"- As of: {md_escape(data['as_of'][:10])} (model {md_escape(data['model_version'])})",
        f"- Score: {num(data['score'])} ({md_escape(data['bucket'])}){' provisional' if data['provisional'] else ''}",
        f"- Segment: {md_escape(acc['segment'])}; ARR: {num(acc['arr'])}; renewal: {md_escape(acc['renewal_date'])}; "
        f"owner: {md_escape(acc['owner'])}",
        f"- Success vector: {vector['direction']} (change {num(vector['change'])} over {vector['window_days']} days)",
        f"- Areas of concern: {md_cell(data['concerns']) if data['concerns'] else 'none'}",
        f"- Strengths: {md_cell(data['strengths']) if data['strengths'] else 'none'}",
    ]
    if data["groups"]:
        out += ["", "## Groups", "", *groups_table(data["groups"])]
    out += ["", "## KPIs", "", *kpi_table(data["kpis"])]
    if data["history"]:
        names = [g["name"] for g in data["groups"]]
        out += ["", "## History", "", "| as of | score | bucket | " + " | ".join(md_cell(n) for n in names) + " |",
                "|---|---:|---|" + "---:|" * len(names)]
        out += [
            f"| {md_cell(h['as_of'][:10])} | {num(h['score'])} | {md_cell(h['bucket'])} | "
            + " | ".join(num(h["groups"].get(n)) for n in names) + " |"
            for h in data["history"]
        ]
    return "\n".join(out) + "\n"


def groups_table(groups: list[dict[str, Any]]) -> list[str]:
    """The Markdown table of a scorecard's groups, children indented under their parents."""
    return ["| group | label | weight | subscore |", "|---|---|---:|---:|"] + [
        f"| {'&nbsp;' * 2 * g['depth']}{md_cell(g['name'])} | {md_cell(g['label'])} | {num(g['weight'])} "
        f"| {num(g['subscore'])} |"
        for g in groups
    ]


def kpi_table(kpis: list[dict[str, Any]], rating: str = "rating") -> list[str]:
    """The Markdown table of a scorecard's KPIs; the last column (titled `rating`) is each KPI's rating
    (concern, neutral, strength), else its input status."""
    return [
        f"| kpi | group | raw | normalized | weight | contribution | {rating} |",
        "|---|---|---:|---:|---:|---:|---|",
    ] + [
        f"| {md_cell(k['kpi'])} | {md_cell(k['group'])} | {num(k['raw'])} | {num(k['normalized'])} "
        f"| {num(k['weight'])} | {num(k['contribution'])} | {md_cell(k['rating'] or k['status'])} |"
        for k in kpis
    ]


def scorecard_html(data: dict[str, Any]) -> str:
    """One self-contained HTML page (inline CSS, no script, nothing fetched) of the scorecard."""
    from pulsecheck.reports.html import content_security_policy, html_environment

    env = html_environment(keep_trailing_newline=True)
    return env.get_template("scorecard.html.j2").render(s=data, csp=content_security_policy(), num=num)


def render(data: dict[str, Any], fmt: str) -> str:
    """The scorecard in `fmt` (md or html)."""
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt!r}: choose from {', '.join(FORMATS)}")
    return scorecard_markdown(data) if fmt == "md" else scorecard_html(data)
