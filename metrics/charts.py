"""Server-side SVG charts of small aggregated series: no JavaScript, no CDN, CSP-safe.

A chart is built from rows that a selector already aggregated (a few dozen points) and
rendered with ``{% load charts %}{% chart my_chart %}``, which prints a ``<figure>`` with

* the SVG (``role="img"``, ``<title>`` and ``<desc>`` named by ``aria-labelledby``),
* a one-sentence text alternative as the caption, and
* the chart's data as a table in a ``<details>`` element right below it.

Series are told apart by line pattern, marker shape or hatching and named in a legend,
never by colour alone. Colours are SVG presentation attributes (allowed by a strict
``style-src 'self'``); sizing lives in ``static/css/portal.css`` (``.chart``).

Usage in a view::

    from metrics.charts import Series, line_chart

    chart = line_chart(
        chart_id="orders",                      # unique on the page; used for element ids
        title=_("Orders per month"),
        x_labels=["01/2025", "02/2025", ...],
        series=[Series(_("Orders"), [12, 15, ...])],
        y_label=_("Orders"),
    )                                             # summary sentence made from the series

and ``context["charts"] = [chart]``; ``controlling/table_page.html`` shows them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

from django.utils.formats import number_format
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext as _

Number = int | float | Decimal

WIDTH = 720
HEIGHT = 320
LEFT = 64  # at least; grows with the widest y-axis label
RIGHT = 24
TOP = 20
BOTTOM = 56  # room for the x-axis labels and title
PLOT_H = HEIGHT - TOP - BOTTOM

# Dark colours with at least 4.5:1 contrast on white, each paired with a pattern.
COLOURS = ("#00457d", "#a4000f", "#1d6b2f", "#5c2d91", "#8a5a00")
DASHES = ("", "6 4", "2 3", "10 3 2 3", "1 5")
MARKERS = ("circle", "square", "triangle", "diamond", "cross")
HATCHES = ("", "diagonal", "dots", "cross-hatch", "horizontal")


@dataclass(frozen=True)
class Series:
    """One named row of values, one per x label; ``None`` leaves a gap."""

    label: str
    values: Sequence[Number | None]
    dashed: bool = False  # e.g. a forecast continuing a measured series


@dataclass
class Chart:
    kind: str  # "line" or "bar"
    chart_id: str
    title: str
    x_labels: Sequence[str]
    series: Sequence[Series]
    y_label: str = ""
    summary: str = ""
    decimals: int = 0
    _svg: str = field(default="", init=False, repr=False)

    @property
    def svg(self) -> SafeString:
        if not self._svg:
            self._svg = _render(self)
        return mark_safe(self._svg)  # every text in it went through escape()

    @property
    def rows(self) -> list[tuple[str, list[str]]]:
        """The data table: one row per x label, one formatted cell per series."""
        return [
            (label, [_fmt(s.values[i], self.decimals) for s in self.series])
            for i, label in enumerate(self.x_labels)
        ]


def _safe_id(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "-", value) or "chart"


def _check(x_labels: Sequence[str], series: Sequence[Series]) -> None:
    for s in series:
        if len(s.values) != len(x_labels):
            raise ValueError(f"series {s.label!r} has {len(s.values)} values for {len(x_labels)}")


def _chart(kind: str, chart_id, title, x_labels, series, y_label, summary, decimals) -> Chart:
    _check(x_labels, series)
    if summary is None:
        summary = " ".join(describe(s, x_labels, decimals=decimals) for s in series)
    return Chart(kind, _safe_id(chart_id), title, list(x_labels), list(series), y_label,
                 summary, decimals)  # fmt: skip


def line_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str = "",
    summary: str | None = None,
    decimals: int = 0,
) -> Chart:
    """A line chart of one or more series over the same x labels (usually months)."""
    return _chart("line", chart_id, title, x_labels, series, y_label, summary, decimals)


def bar_chart(
    *,
    chart_id: str,
    title: str,
    x_labels: Sequence[str],
    series: Sequence[Series],
    y_label: str = "",
    summary: str | None = None,
    decimals: int = 0,
    horizontal: bool = False,
) -> Chart:
    """Grouped bars, one group per x label; each bar carries its value as a label.

    ``horizontal``: one row per label, the label written out to its left and the chart as
    tall as the rows need: for many labels (services), which vertical bars squeeze into
    slivers with cut-off names."""
    kind = "hbar" if horizontal else "bar"
    return _chart(kind, chart_id, title, x_labels, series, y_label, summary, decimals)


def _fmt(value: Number | None, decimals: int = 0) -> str:
    if value is None:
        return "–"
    return number_format(round(Decimal(str(value)), decimals), decimal_pos=decimals,
                         use_l10n=True, force_grouping=True)  # fmt: skip


def describe(series: Series, x_labels: Sequence[str], *, decimals: int = 0) -> str:
    """One sentence on a series: where it started and ended, and its highest point."""
    points = [(x, v) for x, v in zip(x_labels, series.values, strict=True) if v is not None]
    if not points:
        return _("%(series)s: no values.") % {"series": series.label}
    (first_x, first), (last_x, last) = points[0], points[-1]
    peak_x, peak = max(points, key=lambda p: p[1])
    args = {
        "series": series.label,
        "first": _fmt(first, decimals),
        "first_at": first_x,
        "last": _fmt(last, decimals),
        "last_at": last_x,
        "peak": _fmt(peak, decimals),
        "peak_at": peak_x,
    }
    if len(points) == 1:
        return _("%(series)s: %(first)s in %(first_at)s.") % args
    if last > first:
        text = _("%(series)s rose from %(first)s in %(first_at)s to %(last)s in %(last_at)s.")
    elif last < first:
        text = _("%(series)s fell from %(first)s in %(first_at)s to %(last)s in %(last_at)s.")
    else:
        text = _("%(series)s: %(first)s in %(first_at)s and %(last)s in %(last_at)s.")
    text %= args
    if peak > max(first, last):
        text += " " + _("Highest: %(peak)s in %(peak_at)s.") % args
    return text


def _nice_max(value: float, *, whole: bool = False) -> tuple[float, float]:
    """An axis maximum ≥ value and a tick step of 1, 2 or 5 × 10^n (about five ticks);
    ``whole`` keeps the step at 1 or more, for counts."""
    if value <= 0:
        return 1.0, 1.0
    raw = value / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    if whole:
        step = max(step, 1.0)
    return step * math.ceil(value / step), step


def _tick_decimals(step: float) -> int:
    """Enough decimals to tell the ticks apart (0.5 → 1, 0.25 → 2)."""
    for decimals in range(3):
        if abs(round(step, decimals) - step) < 1e-9:
            return decimals
    return 3


def _marker(kind: str, x: float, y: float, colour: str) -> str:
    if kind == "circle":
        return f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>'
    if kind == "square":
        return f'<rect x="{x - 4:.1f}" y="{y - 4:.1f}" width="8" height="8" fill="{colour}"/>'
    if kind == "triangle":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y + 4:.1f} {x - 5:.1f},{y + 4:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    if kind == "diamond":
        pts = f"{x:.1f},{y - 5:.1f} {x + 5:.1f},{y:.1f} {x:.1f},{y + 5:.1f} {x - 5:.1f},{y:.1f}"
        return f'<polygon points="{pts}" fill="{colour}"/>'
    return (
        f'<path d="M{x - 4:.1f},{y - 4:.1f}L{x + 4:.1f},{y + 4:.1f}'
        f'M{x - 4:.1f},{y + 4:.1f}L{x + 4:.1f},{y - 4:.1f}" stroke="{colour}" stroke-width="2"/>'
    )


def _patterns(chart: Chart) -> str:
    out = []
    for i, _series in enumerate(chart.series):
        colour, hatch = COLOURS[i % len(COLOURS)], HATCHES[i % len(HATCHES)]
        if not hatch:
            continue
        shapes = {
            "diagonal": f'<path d="M0,8L8,0" stroke="{colour}" stroke-width="2"/>',
            "dots": f'<circle cx="4" cy="4" r="2" fill="{colour}"/>',
            "cross-hatch": f'<path d="M0,8L8,0M0,0L8,8" stroke="{colour}" stroke-width="1.5"/>',
            "horizontal": f'<path d="M0,4H8" stroke="{colour}" stroke-width="2"/>',
        }[hatch]
        out.append(
            f'<pattern id="{chart.chart_id}-p{i}" width="8" height="8" '
            f'patternUnits="userSpaceOnUse"><rect width="8" height="8" fill="#ffffff"/>'
            f"{shapes}</pattern>"
        )
    return f"<defs>{''.join(out)}</defs>" if out else ""


def _render(chart: Chart) -> str:
    if chart.kind == "hbar":
        return _render_hbar(chart)
    cid = chart.chart_id
    values = [float(v) for s in chart.series for v in s.values if v is not None]
    top, step = _nice_max(max(values, default=0.0), whole=chart.decimals == 0)
    n = len(chart.x_labels)

    tick_labels = [_fmt(step * t, _tick_decimals(step)) for t in range(round(top / step) + 1)]
    left = max(LEFT, 30 + 7 * max(len(label) for label in tick_labels))
    plot_w = WIDTH - left - RIGHT

    def y_of(value: float) -> float:
        return TOP + PLOT_H - (value / top) * PLOT_H

    slot = plot_w / max(n, 1)

    def x_of(i: int) -> float:
        return left + slot * (i + 0.5)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {WIDTH} {HEIGHT}"'
        f' role="img" aria-labelledby="{cid}-title {cid}-desc" focusable="false">',
        f'<title id="{cid}-title">{escape(chart.title)}</title>',
        f'<desc id="{cid}-desc">{escape(chart.summary)}</desc>',
        _patterns(chart),
    ]
    # Grid lines and y-axis labels.
    for t, tick_label in enumerate(tick_labels):
        y = y_of(step * t)
        parts.append(
            f'<line x1="{left}" x2="{left + plot_w}" y1="{y:.1f}" y2="{y:.1f}" '
            f'stroke="#c8c8c8" stroke-width="1"/>'
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="12" '
            f'fill="#1a1a1a">{escape(tick_label)}</text>'
        )
    # Axes.
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{TOP}" y2="{TOP + PLOT_H}" stroke="#1a1a1a"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{TOP + PLOT_H}" y2="{TOP + PLOT_H}" '
        f'stroke="#1a1a1a"/>'
    )
    if chart.y_label:
        parts.append(
            f'<text x="14" y="{TOP + PLOT_H / 2:.1f}" font-size="12" fill="#1a1a1a" '
            f'text-anchor="middle" transform="rotate(-90 14 {TOP + PLOT_H / 2:.1f})">'
            f"{escape(chart.y_label)}</text>"
        )
    # X labels: as many as fit side by side (about 7 px per character at 12 px).
    widest = max((min(len(label), 14) for label in chart.x_labels), default=1)
    fitting = max(1, int(plot_w // (7 * widest + 12)))
    every = max(1, math.ceil(n / fitting))
    shown = set(range(n - 1, -1, -every))  # counted back from the last, which is always shown
    for i, label in enumerate(chart.x_labels):
        if i not in shown:
            continue
        label = label if len(label) <= 14 else label[:13] + "…"
        parts.append(
            f'<text x="{x_of(i):.1f}" y="{TOP + PLOT_H + 18}" text-anchor="middle" '
            f'font-size="12" fill="#1a1a1a">{escape(label)}</text>'
        )
    if chart.kind == "bar":
        parts.extend(_bars(chart, slot, x_of, y_of))
    else:
        parts.extend(_lines(chart, x_of, y_of))
    legend, extra = _legend(chart, left)
    parts.append(legend)
    parts.append("</svg>")
    if extra:
        parts[0] = parts[0].replace(f'viewBox="0 0 {WIDTH} {HEIGHT}"',
                                    f'viewBox="0 0 {WIDTH} {HEIGHT + extra}"')  # fmt: skip
    return "".join(parts)


def _lines(chart: Chart, x_of, y_of) -> list[str]:
    parts = []
    for i, s in enumerate(chart.series):
        colour = COLOURS[i % len(COLOURS)]
        dash = "6 4" if s.dashed else DASHES[i % len(DASHES)]
        dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
        # A gap (None) ends a segment; each run of values is one polyline.
        runs, run = [], []
        for j, v in enumerate(s.values):
            if v is None:
                if run:
                    runs.append(run)
                run = []
            else:
                run.append((x_of(j), y_of(float(v))))
        if run:
            runs.append(run)
        for points in runs:
            coords = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="2.5"{dash_attr}/>'
            )
            parts.extend(_marker(MARKERS[i % len(MARKERS)], x, y, colour) for x, y in points)
    return parts


def _bars(chart: Chart, slot: float, x_of, y_of) -> list[str]:
    parts = []
    count = max(len(chart.series), 1)
    width = min(slot * 0.8 / count, 48)
    base = y_of(0)
    for i, s in enumerate(chart.series):
        colour = COLOURS[i % len(COLOURS)]
        fill = f"url(#{chart.chart_id}-p{i})" if HATCHES[i % len(HATCHES)] else colour
        for j, v in enumerate(s.values):
            if v is None:
                continue
            x = x_of(j) - width * count / 2 + width * i
            y = y_of(float(v))
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{width:.1f}" height="{base - y:.1f}" '
                f'fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
            )
            text = _fmt(v, chart.decimals)
            if 6.5 * len(text) <= slot / count - 2:  # only where it fits; the table has all
                parts.append(
                    f'<text x="{x + width / 2:.1f}" y="{y - 4:.1f}" text-anchor="middle" '
                    f'font-size="11" fill="#1a1a1a">{escape(text)}</text>'
                )
    return parts


def _legend(chart: Chart, left: int, bottom: int = HEIGHT) -> tuple[str, int]:
    """Sample line or hatched box plus full name per series, in rows under the x labels.

    Returns the markup and the extra height the rows after the first one need.
    """
    parts = []
    x, y = left, bottom - 12
    for i, s in enumerate(chart.series):
        label = s.label if len(s.label) <= 60 else s.label[:59] + "…"
        width = 40 + 7 * len(label)
        if x > left and x + width > WIDTH:
            x, y = left, y + 18
        colour = COLOURS[i % len(COLOURS)]
        if chart.kind in ("bar", "hbar"):
            fill = f"url(#{chart.chart_id}-p{i})" if HATCHES[i % len(HATCHES)] else colour
            parts.append(
                f'<rect x="{x}" y="{y - 10}" width="14" height="12" fill="{fill}" '
                f'stroke="{colour}"/>'
            )
        else:
            dash = "6 4" if s.dashed else DASHES[i % len(DASHES)]
            dash_attr = f' stroke-dasharray="{dash}"' if dash else ""
            parts.append(
                f'<line x1="{x}" x2="{x + 24}" y1="{y - 4}" y2="{y - 4}" stroke="{colour}" '
                f'stroke-width="2.5"{dash_attr}/>'
            )
            parts.append(_marker(MARKERS[i % len(MARKERS)], x + 12, y - 4, colour))
        parts.append(
            f'<text x="{x + 30}" y="{y}" font-size="12" fill="#1a1a1a">{escape(label)}</text>'
        )
        x += width
    return "".join(parts), y - (bottom - 12)


# Horizontal bars: one row per label.
BAR_H = 12  # height of one bar
ROW_GAP = 10  # between the rows of two labels
LABEL_CHARS = 36  # longer labels are cut with "…" (the data table has them in full)
VALUE_W = 52  # room right of the longest bar for its value


def _render_hbar(chart: Chart) -> str:
    cid = chart.chart_id
    values = [float(v) for s in chart.series for v in s.values if v is not None]
    top, step = _nice_max(max(values, default=0.0), whole=chart.decimals == 0)
    count = max(len(chart.series), 1)
    row_h = BAR_H * count + ROW_GAP
    labels = [
        label if len(label) <= LABEL_CHARS else label[: LABEL_CHARS - 1] + "…"
        for label in chart.x_labels
    ]
    left = 16 + round(6.5 * max((len(label) for label in labels), default=4))
    plot_w = WIDTH - left - VALUE_W
    plot_h = row_h * len(labels)
    bottom = TOP + plot_h + 44 + 24  # tick labels, axis title, legend row

    def x_of(value: float) -> float:
        return left + (value / top) * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 {WIDTH} '
        f'{{height}}" role="img" aria-labelledby="{cid}-title {cid}-desc" focusable="false">',
        f'<title id="{cid}-title">{escape(chart.title)}</title>',
        f'<desc id="{cid}-desc">{escape(chart.summary)}</desc>',
        _patterns(chart),
    ]
    ticks = round(top / step) + 1
    for t in range(ticks):
        x = x_of(step * t)
        parts.append(
            f'<line x1="{x:.1f}" x2="{x:.1f}" y1="{TOP}" y2="{TOP + plot_h}" '
            f'stroke="#c8c8c8" stroke-width="1"/>'
            f'<text x="{x:.1f}" y="{TOP + plot_h + 16}" text-anchor="middle" font-size="12" '
            f'fill="#1a1a1a">{escape(_fmt(step * t, _tick_decimals(step)))}</text>'
        )
    parts.append(
        f'<line x1="{left}" x2="{left}" y1="{TOP}" y2="{TOP + plot_h}" stroke="#1a1a1a"/>'
        f'<line x1="{left}" x2="{left + plot_w}" y1="{TOP + plot_h}" y2="{TOP + plot_h}" '
        f'stroke="#1a1a1a"/>'
    )
    if chart.y_label:
        parts.append(
            f'<text x="{left + plot_w / 2:.1f}" y="{TOP + plot_h + 34}" text-anchor="middle" '
            f'font-size="12" fill="#1a1a1a">{escape(chart.y_label)}</text>'
        )
    for j, label in enumerate(labels):
        y0 = TOP + j * row_h + ROW_GAP / 2
        parts.append(
            f'<text x="{left - 6}" y="{y0 + BAR_H * count / 2 + 4:.1f}" text-anchor="end" '
            f'font-size="12" fill="#1a1a1a">{escape(label)}</text>'
        )
        for i, s in enumerate(chart.series):
            v = s.values[j]
            if v is None:
                continue
            colour = COLOURS[i % len(COLOURS)]
            fill = f"url(#{cid}-p{i})" if HATCHES[i % len(HATCHES)] else colour
            y = y0 + BAR_H * i
            end = x_of(float(v))
            parts.append(
                f'<rect x="{left}" y="{y:.1f}" width="{end - left:.1f}" height="{BAR_H}" '
                f'fill="{fill}" stroke="{colour}" stroke-width="1.5"/>'
                f'<text x="{end + 4:.1f}" y="{y + BAR_H - 2:.1f}" font-size="11" '
                f'fill="#1a1a1a">{escape(_fmt(v, chart.decimals))}</text>'
            )
    legend, extra = _legend(chart, left, bottom)
    parts.append(legend)
    parts.append("</svg>")
    parts[0] = parts[0].replace("{height}", str(bottom + extra))
    return "".join(parts)
