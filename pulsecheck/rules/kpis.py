"""Which KPIs a rules file may name: those of the approved scoring model (`kpi.<name>`, `kpi_status.<name>`),
and for the windows (`kpi_avg.<name>_30d`...) those read from imported readings.

Without this check a misspelled `kpi.logins` validates and is silently false (a missing fact matches nothing).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass

from pulsecheck.rules.conditions import KPI_WINDOWED, kpi_of


@dataclass(frozen=True)
class KpiNames:
    """The KPIs of the approved model (`names` None: no model is approved), those of them read from imported
    readings, and how to name the model in a message."""

    names: frozenset[str] | None
    readings: frozenset[str] = frozenset()
    model: str = "the approved model"

    @classmethod
    def unknown(cls) -> KpiNames:
        """No approved model: nothing to check KPI names against."""
        return cls(None)


NO_MODEL = (
    "KPI names are not checked: no approved scoring model (run `pulsecheck model approve FILE`); "
    "until then every kpi fact is missing and its conditions are false"
)


def kpi_problem(fact: str, kpis: KpiNames) -> str | None:
    """What is wrong with a fact naming a KPI, or None (also when it names none, or no model is known)."""
    kpi = kpi_of(fact)
    if kpi is None or kpis.names is None:
        return None
    if kpi not in kpis.names:
        close = difflib.get_close_matches(kpi, sorted(kpis.names), n=1, cutoff=0.6)
        hint = f" (did you mean {_renamed(fact, kpi, close[0])!r}?)" if close else ""
        known = ", ".join(sorted(kpis.names)) or "none"
        return f"{fact}: {kpis.model} has no KPI {kpi!r}{hint}; its KPIs: {known}"
    if KPI_WINDOWED.match(fact) and kpi not in kpis.readings:
        return (
            f"{fact}: KPI windows are computed over imported readings, and {kpis.model} computes {kpi!r} "
            "from surveys or a formula: compare kpi." + kpi + " instead"
        )
    return None


def names_kpis(facts: Iterable[str]) -> bool:
    """Whether any of the facts is about a KPI (what makes a missing model worth a warning)."""
    return any(kpi_of(fact) is not None for fact in facts)


def _renamed(fact: str, kpi: str, other: str) -> str:
    """The fact with its KPI name replaced (`kpi_avg.logns_30d` -> `kpi_avg.logins_30d`)."""
    head, dot, tail = fact.partition(".")
    return head + dot + other + tail[len(kpi) :]
