"""Demand forecast of one service from its monthly order counts: trend × season.

Pure arithmetic over a few dozen already-aggregated numbers (the counts come from SQL);
kept free of the database so it can be checked against figures computed by hand.

Method, in words (also shown on the page and in the README):

1. The history is the service's monthly order counts y_1 … y_n up to the last complete
   month; a service first ordered inside the period starts the month after (see
   ``selectors.demand_history``).
2. Seasonality, only with at least 24 months of history (two of every calendar month):
   the seasonal index of a calendar month is the average of its counts divided by the
   average of all counts (1.0 = an ordinary month). With less history every index is 1.
3. Trend: a least-squares line a + b·t through the counts divided by their month's index
   (months with index 0 are left out: they never had an order).
4. Forecast of month n + k: (a + b·(n + k)) × index of its calendar month, never below 0.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from dataclasses import dataclass

SEASONAL_MIN_MONTHS = 24
HORIZON = 3


def add_months(month: datetime.date, count: int) -> datetime.date:
    index = month.year * 12 + month.month - 1 + count
    return datetime.date(index // 12, index % 12 + 1, 1)


@dataclass(frozen=True)
class Forecast:
    months: list[datetime.date]  # the forecast months
    values: list[float]  # expected orders per forecast month, ≥ 0
    slope: float  # trend in orders per month (deseasonalised)
    intercept: float
    seasonal: bool  # whether seasonal indices were used
    indices: dict[int, float]  # calendar month → seasonal index

    @property
    def total(self) -> float:
        return sum(self.values)


def forecast(
    counts: Sequence[int | float], *, first_month: datetime.date, horizon: int = HORIZON
) -> Forecast:
    """Forecast ``horizon`` months after a history that starts with ``first_month``."""
    n = len(counts)
    months = [add_months(first_month, i) for i in range(n)]
    targets = [add_months(first_month, n + k) for k in range(horizon)]
    indices = dict.fromkeys(range(1, 13), 1.0)
    seasonal = n >= SEASONAL_MIN_MONTHS
    overall = sum(counts) / n if n else 0.0
    if seasonal and overall > 0:
        by_month: dict[int, list[float]] = {}
        for month, y in zip(months, counts, strict=True):
            by_month.setdefault(month.month, []).append(float(y))
        indices = {m: (sum(ys) / len(ys)) / overall for m, ys in by_month.items()}
    # t = 1 … n; points of calendar months with index 0 carry no level information.
    points = [
        (t, float(y) / indices[month.month])
        for t, (month, y) in enumerate(zip(months, counts, strict=True), start=1)
        if indices[month.month] > 0
    ]
    slope, intercept = _least_squares(points)
    values = [
        max(0.0, (intercept + slope * (n + k + 1)) * indices[target.month])
        for k, target in enumerate(targets)
    ]
    return Forecast(targets, values, slope, intercept, seasonal and overall > 0, indices)


def _least_squares(points: Sequence[tuple[int, float]]) -> tuple[float, float]:
    """Slope and intercept of the least-squares line; flat at the mean below two points."""
    if not points:
        return 0.0, 0.0
    count = len(points)
    mean_t = sum(t for t, _ in points) / count
    mean_y = sum(y for _, y in points) / count
    spread = sum((t - mean_t) ** 2 for t, _ in points)
    if spread == 0:
        return 0.0, mean_y
    slope = sum((t - mean_t) * (y - mean_y) for t, y in points) / spread
    return slope, mean_y - slope * mean_t


# --- the band around a forecast, for demand anomalies (docs/assistance.md) -------------------

BAND_WIDTH = 2.0  # how many spreads above and below the expected value
ANOMALY_MIN_HISTORY = 6  # months of history before a month can be judged


@dataclass(frozen=True)
class Band:
    """The orders expected in one month and the range that counts as ordinary."""

    expected: float
    low: float
    high: float
    spread: float  # one spread: the larger of the fit's scatter and √expected


def band(
    counts: Sequence[int | float], *, first_month: datetime.date, width: float = BAND_WIDTH
) -> Band:
    """The band for the month after ``counts``: the forecast of that month ± ``width`` spreads.

    One spread is the standard deviation of the history around the forecast's own fit (trend ×
    season, n − 2 degrees of freedom), but at least √expected (at least 1): counts of orders
    scatter about that much even when nothing changes, so a quiet service with 0–1 orders a
    month is not flagged for a month with two.
    """
    result = forecast(counts, first_month=first_month, horizon=1)
    expected = result.values[0]
    n = len(counts)
    residuals = []
    for t, y in enumerate(counts, start=1):
        month = add_months(first_month, t - 1)
        fitted = max(0.0, (result.intercept + result.slope * t) * result.indices[month.month])
        residuals.append(float(y) - fitted)
    scatter = (sum(r * r for r in residuals) / max(n - 2, 1)) ** 0.5 if n else 0.0
    spread = max(scatter, expected**0.5, 1.0)
    return Band(expected, max(0.0, expected - width * spread), expected + width * spread, spread)
