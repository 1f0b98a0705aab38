"""The portfolio report: one self-contained HTML file (pygal charts inlined as SVG, sortable tables, no request
leaving the file) and a terminal summary (rich, sparklines)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pulsecheck.safetext import strip_controls
from pulsecheck.scoring.colors import safe_color
from pulsecheck.scoring.model import RATINGS
from pulsecheck.scoring.trends import sparkline

if TYPE_CHECKING:
    from rich.console import RenderableType

    from pulsecheck.workflow.portfolio import Portfolio

TEMPLATES_DIR = Path(__file__).parent / "templates"
HTML_ROWS = 500  # rows per table in the HTML; the JSON output has them all
PRIORITY_COLORS = {"P1": "#c0392b", "P2": "#e67e22", "P3": "#f1c40f", "P4": "#7f8c8d"}


# --- HTML ---------------------------------------------------------------------------------------------------


def render_html(data: Portfolio, now: datetime) -> str:
    """The report as one HTML document, its Content-Security-Policy allowing only its own sort script."""
    from pulsecheck.reports.html import content_security_policy, html_environment
    from pulsecheck.reports.scorecard import num

    env = html_environment(trim_blocks=True, lstrip_blocks=True)
    env.filters["n"] = lambda value: f"{value:,}"  # thousands separators for counts
    env.filters["money"] = lambda value: f"{value:,.0f}"  # ARR, whole units
    sort_script = (TEMPLATES_DIR / "sort.js").read_text(encoding="utf-8")
    template = env.get_template("portfolio.html.j2")
    return template.render(
        data=data,
        json=data.as_dict(),
        charts=charts(data),
        ranges=bucket_ranges(data),
        rows=HTML_ROWS,
        generated_at=now,
        priority_colors=PRIORITY_COLORS,
        age_bands=data.age_bands,
        anchors=scorecard_anchors(data),
        heat=heat_table(data),
        num=num,
        sort_script=sort_script,
        csp=content_security_policy([sort_script]),
    )


def scorecard_anchors(data: Portfolio) -> dict[str, str]:
    """Account (external id) → the id of its scorecard page in the report (positional, so always a safe id)."""
    return {card["account"]["id"]: f"scorecard-{index}" for index, card in enumerate(data.scorecards, 1)}


def heat_table(data: Portfolio) -> dict[str, Any]:
    """The KPI heat table: columns, and per row the account and one cell per KPI with its CSS class (heat-concern,
    heat-neutral, heat-strength or heat-missing), its value and the model's status colour (None: uncoloured)."""
    kpis = data.heat_kpis()
    rows = []
    for row in data.heat_rows():
        cells = []
        for kpi in kpis:
            cell = row["cells"].get(kpi)
            rating = cell["rating"] if cell is not None and cell["rating"] in RATINGS else None
            cells.append(
                {
                    "kpi": kpi,
                    "class": f"heat-{rating or 'missing'}",
                    "raw": cell["raw"] if cell is not None else None,
                    "normalized": cell["normalized"] if cell is not None else None,
                    "rating": rating or ("missing" if cell is not None else "not in this scorecard"),
                    "color": safe_color(data.status_colors[rating], "") if rating in data.status_colors else "",
                }
            )
        rows.append({"account": row["account"], "name": row["name"], "score": row["score"], "cells": cells})
    return {"kpis": kpis, "rows": rows}


def bucket_ranges(data: Portfolio) -> dict[str, str]:
    """Bucket name → its score range in words (`40–80`)."""
    ranges, low = {}, 0.0
    for bucket in data.buckets:
        if not bucket.in_model:
            ranges[bucket.name] = "older model"
            continue
        high = bucket.below if bucket.below is not None else 100.0
        ranges[bucket.name] = f"{low:g}–{high:g}"
        low = high
    return ranges


def _config(**options: Any) -> dict[str, Any]:
    """pygal options for inline SVG: no XML declaration, no external script (pygal's default is a CDN)."""
    return {
        "js": [],
        "disable_xml_declaration": True,
        "explicit_size": False,
        "width": 760,
        "height": 320,
        "legend_at_bottom": True,
        "no_data_text": "no data",
        **options,
    }


def charts(data: Portfolio) -> dict[str, str]:
    """Chart name → inline SVG markup, rendered by pygal in the model's bucket colours, without pygal's script."""
    import pygal
    from pygal.style import Style

    from pulsecheck.reports.html import without_scripts

    colors = {b.name: safe_color(b.color) for b in data.buckets}
    bucket_style = Style(colors=tuple(colors.values()) or ("gray",), background="white", plot_background="white")
    plain = Style(colors=("#34495e",), background="white", plot_background="white")

    buckets = pygal.Pie(**_config(style=bucket_style, inner_radius=0.45, title="Accounts by bucket"))
    for bucket in data.buckets:
        buckets.add(bucket.name, bucket.count)

    scores = pygal.Bar(**_config(style=plain, title="Score distribution (latest snapshot)", show_legend=False))
    scores.x_labels = [f"{lo}–{hi}" for lo, hi, _ in data.histogram]
    scores.add("accounts", [{"value": n, "color": _color_of(data, lo)} for lo, _, n in data.histogram])

    mean = pygal.Line(**_config(style=plain, title="Mean score per month", range=(0, 100), show_legend=False))
    mean.x_labels = [p.month for p in data.trend]
    mean.add("mean score", [p.mean_score for p in data.trend])

    stacked = pygal.StackedBar(**_config(style=bucket_style, title="Accounts per bucket per month"))
    stacked.x_labels = [p.month for p in data.trend]
    for name in colors:
        stacked.add(name, [p.buckets.get(name, 0) for p in data.trend])
    return {
        name: without_scripts(chart.render(is_unicode=True))
        for name, chart in (("buckets", buckets), ("scores", scores), ("mean", mean), ("stacked", stacked))
    }


def _color_of(data: Portfolio, score: float) -> str:
    for bucket in data.buckets:
        if bucket.below is None or score < bucket.below:
            return safe_color(bucket.color)
    return "gray"


# --- terminal -----------------------------------------------------------------------------------------------


def terminal_summary(data: Portfolio) -> RenderableType:
    """A rich summary: buckets with bars, score and trend sparklines, the most urgent at-risk accounts."""
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    scope = f" · segment {strip_controls(data.segment)}" if data.segment else ""
    model = strip_controls(data.model_version or "none approved")
    head = Text.assemble(
        ("Portfolio", "bold"),
        f" as of {data.as_of:%Y-%m-%d %H:%M %Z}{scope} · model {model} · ",
        f"{data.accounts:,} accounts ({data.unscored:,} unscored)",
    )
    total = sum(b.count for b in data.buckets) or 1
    buckets = Table("bucket", "range", "accounts", "share", title="Buckets", title_justify="left")
    ranges = bucket_ranges(data)
    for bucket in data.buckets:
        bar = "█" * round(30 * bucket.count / total)
        buckets.add_row(
            Text(strip_controls(bucket.name), style=_rich_color(bucket.color)),
            ranges[bucket.name],
            f"{bucket.count:,}",
            Text(f"{bar} {100 * bucket.count / total:.0f}%", style=_rich_color(bucket.color)),
        )
    months = f"{data.trend[0].month}..{data.trend[-1].month}" if data.trend else "no history"
    lines = Text.assemble(
        ("scores   ", "bold"),
        sparkline([float(n) for _, _, n in data.histogram]),
        "  0..100 by tens\n",
        ("trend    ", "bold"),
        sparkline([p.mean_score for p in data.trend], 0, 100),
        f"  mean score per month, {months}",
        f" (latest {data.trend[-1].mean_score})" if data.trend else "",
    )
    return Group(head, "", buckets, lines, _groups_line(data), "", _risk_table(data), _owner_table(data), _counts(data))


def _groups_line(data: Portfolio) -> RenderableType:
    from rich.text import Text

    if not data.groups:
        return Text("")
    parts = []
    for group in data.groups:
        mean = "-" if group.mean is None else f"{group.mean:.1f}"
        change = "" if group.change is None else f" ({group.change:+.1f})"
        parts.append(f"{strip_controls(group.name)} {mean}{change}")
    return Text.assemble(("groups   ", "bold"), ", ".join(parts), "  mean subscore (change vs the month before)")


def _owner_table(data: Portfolio, limit: int = 10) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    more = f" (top {limit} by at-risk accounts)" if len(data.owners) > limit else ""
    title = f"Owners: {len(data.owners):,}{more}"
    table = Table("owner", "accounts", "ARR", "mean score", "at risk", "ARR at risk", "escalations", title=title,
                  title_justify="left")
    for row in data.owners[:limit]:
        table.add_row(
            Text(strip_controls(row.owner or "-")),
            f"{row.accounts:,}",
            f"{row.arr:,.0f}",
            "-" if row.mean_score is None else f"{row.mean_score:.1f}",
            f"{row.at_risk:,}",
            f"{row.arr_at_risk:,.0f}",
            f"{row.open_escalations:,}",
        )
    return table


def _risk_table(data: Portfolio, limit: int = 15) -> RenderableType:
    from rich.table import Table
    from rich.text import Text

    title = f"At risk: {len(data.at_risk):,}" + (f" (top {limit})" if len(data.at_risk) > limit else "")
    risky = Table("prio", "account", "owner", "score", "bucket", "renewal", "why", title=title, title_justify="left")
    for item in data.at_risk[:limit]:
        cells = (
            item.priority,
            item.external_id,
            item.owner or "-",
            "-" if item.score is None else f"{item.score:.1f}",
            item.bucket or "-",
            "-" if item.days_to_renewal is None else f"{item.days_to_renewal}d",
            "; ".join(item.reasons),
        )
        risky.add_row(*(Text(strip_controls(cell)) for cell in cells))  # Text: data is never rich markup
    return risky


def _counts(data: Portfolio) -> RenderableType:
    from rich.text import Text

    by_priority = data.escalations_by_priority()
    escalations = ", ".join(f"{p} {row['count']}" for p, row in by_priority.items()) or "none"
    deviations = ", ".join(f"{k} {n}" for k, n in data.deviations.get("open", {}).items()) or "none"
    return Text.assemble(
        ("ARR at risk      ", "bold"),
        f"{data.arr.at_risk:,.0f} of {data.arr.total:,.0f}\n",
        ("overdue reviews  ", "bold"),
        f"{len(data.overdue_reviews):,}\n",
        ("open escalations ", "bold"),
        f"{len(data.escalations):,} ({escalations})\n",
        ("open deviations  ", "bold"),
        f"{sum(data.deviations.get('open', {}).values()):,} ({deviations})",
    )


def _rich_color(color: str) -> str:
    """A model colour as a rich style (CSS names like `orange` mostly exist in rich; unknown ones fall back)."""
    from rich.color import Color, ColorParseError

    if safe_color(color, "") != color:  # a style string could carry more than a colour ("red link http://...")
        return "default"
    try:
        Color.parse(color)
        return color
    except ColorParseError:
        return "default"
