"""``{% chart some_chart %}``: a chart from metrics.charts with its text alternative and table.

The markup (the SVG, the caption, the data table) is a function of the chart's data, the
language and the time zone: it is kept per process under the reprs of the chart's fields
(every one but the rendered SVG), so a report whose figures did not change does not draw
its chart again. A chart holding anything but plain values (a lazy translation, whose repr
says only where it lives) is drawn every time.
"""

import dataclasses

from django import template
from django.template.loader import get_template
from django.utils import timezone, translation
from django.utils.safestring import mark_safe

from itportal.memo import Memo, is_value

register = template.Library()

CHART_MEMO = Memo(256, 4 << 20)


def chart_key(chart) -> tuple | None:
    values = [
        getattr(chart, f.name) for f in dataclasses.fields(chart) if f.repr and f.name != "_svg"
    ]
    if not all(is_value(value) for value in values):
        return None
    return (
        type(chart),
        translation.get_language(),
        timezone.get_current_timezone_name(),
        *(repr(value) for value in values),
    )


def _render(chart) -> str:
    return get_template("charts/chart.html").render({"chart": chart})


@register.simple_tag
def chart(chart):
    key = chart_key(chart)
    if key is None:
        return mark_safe(_render(chart))  # the template's output, escaped as it rendered
    html = CHART_MEMO.get(key)
    if html is None:
        html = _render(chart)
        CHART_MEMO.put(key, html)
    return mark_safe(html)  # the template's output, escaped as it rendered
