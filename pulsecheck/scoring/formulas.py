"""Survey KPI formulas (DESIGN.md section 7): CSAT, NPS and CES, each on a 0..100 or -100..100 scale.

Every formula returns None for no responses, and raises ValueError for a response that cannot be
right (a score outside 0..max_score, a max_score of zero or less), since that is bad data to fix upstream.
"""

from __future__ import annotations

from collections.abc import Iterable

PROMOTER_AT = 9  # NPS: 9-10 promote
DETRACTOR_AT = 6  # NPS: 0-6 detract, 7-8 are passive
NPS_MAX = 10


def _checked(responses: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    checked = []
    for score, max_score in responses:
        if max_score <= 0:
            raise ValueError(f"survey max_score must be positive, got {max_score}")
        if not 0 <= score <= max_score:
            raise ValueError(f"survey score {score} is outside 0..{max_score}")
        checked.append((float(score), float(max_score)))
    return checked


def csat(responses: Iterable[tuple[float, float]]) -> float | None:
    """CSAT 0..100 over `(score, max_score)` pairs: sum of scores / sum of max scores x 100."""
    pairs = _checked(responses)
    if not pairs:
        return None
    return sum(score for score, _ in pairs) / sum(top for _, top in pairs) * 100.0


def nps(scores: Iterable[float]) -> float | None:
    """NPS -100..100 over 0..10 scores: % promoters (9-10) minus % detractors (0-6)."""
    values = [score for score, _ in _checked((score, NPS_MAX) for score in scores)]
    if not values:
        return None
    promoters = sum(1 for v in values if v >= PROMOTER_AT)
    detractors = sum(1 for v in values if v <= DETRACTOR_AT)
    return (promoters - detractors) / len(values) * 100.0


def ces(responses: Iterable[tuple[float, float]], positive_at: float = 0.7, negative_at: float = 0.45) -> float | None:
    """CES -100..100 over `(score, max_score)` pairs: % positive minus % negative, where a response is
    positive when score/max_score >= positive_at and negative when score/max_score <= negative_at."""
    pairs = _checked(responses)
    if not pairs:
        return None
    ratios = [score / top for score, top in pairs]
    positive = sum(1 for r in ratios if r >= positive_at)
    negative = sum(1 for r in ratios if r <= negative_at)
    return (positive - negative) / len(ratios) * 100.0
