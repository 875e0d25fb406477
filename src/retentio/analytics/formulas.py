"""The retention formulas of docs/definitions.md as plain functions. Rates are fractions (0.9 = 90 %).

Every function reproduces a worked example of docs/definitions.md ("Metrics"); where a source's
arithmetic is wrong, the corrected figure is the one reproduced. A zero
denominator raises :class:`ValueError` (period reports show null instead).
"""

from __future__ import annotations

from collections.abc import Iterable


def _ratio(numerator: float, denominator: float, what: str) -> float:
    if denominator == 0:
        raise ValueError(f"{what}: the denominator is zero, so the rate is undefined")
    return numerator / denominator


def crr(start: float, new: float, end: float) -> float:
    """Customer retention rate, CRR = (E − N) / S.

    S customers at the start of the period, N new customers acquired in it, E customers
    at its end. Examples (docs/definitions.md): S=1000, N=200, E=1100 → 0.90;
    S=110, N=60, E=115 → 0.50; S=1500, N=250, E=1650 → 0.9333; S=100, N=5, E=95 → 0.90;
    S=190, N=25, E=205 → 0.9474.
    """
    return _ratio(end - new, start, "CRR")


def churn_rate(lost: float, start: float) -> float:
    """Churn rate = L / S: customers lost in the period over customers at its start.

    Equals 1 − CRR when nobody is reactivated. Seed examples: L=50 of S=1000 → 0.05;
    S=200, E=180, N=0 → L=20 → 0.10; L=10 of S=190 → 0.0526.
    """
    return _ratio(lost, start, "churn rate")


def nps(promoters: float, passives: float, detractors: float) -> float:
    """Net Promoter Score = % promoters (9–10) − % detractors (0–6), from −100 to +100.

    Reichheld (2003), "The One Number You Need to Grow", HBR. Example (docs/definitions.md): 150
    answers, 65 promoters, 50 passives, 35 detractors → 43.33 % − 23.33 % = **+20**
    (subtracting the counts gives 30, which is wrong).
    """
    total = promoters + passives + detractors
    return 100.0 * _ratio(promoters - detractors, total, "NPS")


def nps_from_scores(scores: Iterable[float]) -> float:
    """NPS from raw 0–10 answers: promoters score 9–10, detractors 0–6."""
    values = list(scores)
    bad = [s for s in values if not 0 <= s <= 10]
    if bad:
        raise ValueError(f"NPS scores are 0–10, got {bad[:5]}")
    promoters = sum(1 for s in values if s >= 9)
    detractors = sum(1 for s in values if s <= 6)
    return nps(promoters, len(values) - promoters - detractors, detractors)


def csat(scores: Iterable[float]) -> float:
    """CSAT = share of answers of 4 or 5 on a 1–5 scale (a fraction; × 100 for %).

    E.g. answers 5, 4, 3, 2 → 2 of 4 → 0.5.
    """
    values = list(scores)
    bad = [s for s in values if not 1 <= s <= 5]
    if bad:
        raise ValueError(f"CSAT scores are 1–5, got {bad[:5]}")
    return _ratio(sum(1 for s in values if s >= 4), len(values), "CSAT")


def repeat_purchase_rate(repeat_customers: float, customers: float) -> float:
    """Repeat purchase rate (RPR) = customers with ≥ 2 purchases / all customers.

    Example (docs/definitions.md): 65 of 150 → 0.4333.
    """
    return _ratio(repeat_customers, customers, "repeat purchase rate")


def clv_simple(avg_purchase_value: float, purchase_frequency: float, lifespan: float) -> float:
    """Simple CLV = average purchase value × purchase frequency × average lifespan.

    Frequency and lifespan in the same time unit. Seed: $50 × 4 / year × 5 years → $1,000.
    """
    return avg_purchase_value * purchase_frequency * lifespan


def ltv_subscription(mrr: float, gross_margin: float, crr: float, mrr_retention: float,
                     discount_rate: float) -> float:
    """Subscription LTV, the seed's formula: MRR × margin × CRR / (1 + discount − MRR retention).

    Seed: MRR 3,000, margin 40 %, CRR 90 %, MRR retention 95 %, discount 7.3 % →
    3000 × 0.4 × 0.9 / (1 + 0.073 − 0.95) = 1080 / 0.123 ≈ 8,780.
    """
    return _ratio(mrr * gross_margin * crr, 1 + discount_rate - mrr_retention,
                  "subscription LTV (1 + discount − MRR retention)")


def ltv_short(arpu: float, churn_rate: float) -> float:
    """Short LTV = ARPU / churn rate (expected lifetime 1 / churn periods).

    Seed: 3,000 / 0.10 → 30,000.
    """
    return _ratio(arpu, churn_rate, "LTV (churn rate)")


def ltv_to_cac(ltv: float, cac: float) -> float:
    """LTV : CAC ratio; the usual rule of thumb calls ≥ 3 healthy (Skok 2013). E.g. 900 / 300 → 3.0."""
    return _ratio(ltv, cac, "LTV:CAC (CAC)")


def romi(ltv: float, cac: float) -> float:
    """ROMI of acquisition as docs/definitions.md defines it: LTV / CAC (× 100 for %).

    Below 1 (100 %) the customer does not pay back their acquisition. E.g. LTV 250,
    CAC 200 → 1.25 (125 %).
    """
    return _ratio(ltv, cac, "ROMI (CAC)")


def retention_ratio(net_income: float, dividends: float) -> float:
    """Retention ratio in finance (the plowback ratio): (net income − dividends) / net income.

    = 1 − payout ratio; a homonym of customer retention, listed in docs/definitions.md.
    Seed: 100,000 and 20,000 → 0.80; 200,000 and 60,000 → 0.70; 100,000 and 60,000 → 0.40.
    """
    return _ratio(net_income - dividends, net_income, "retention ratio (net income)")


__all__ = [
    "churn_rate", "clv_simple", "crr", "csat", "ltv_short", "ltv_subscription", "ltv_to_cac",
    "nps", "nps_from_scores", "repeat_purchase_rate", "retention_ratio", "romi",
]
