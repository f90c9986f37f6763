"""``{% chart some_chart %}``: a chart from metrics.charts with its text alternative and table.

The markup (the SVG, the caption, the data table) is a function of the chart's data and the
language: it is kept per process under the chart's repr (every field but the rendered SVG),
so a report whose figures did not change does not draw its chart again.
"""

from django import template
from django.template.loader import get_template
from django.utils import translation
from django.utils.safestring import mark_safe

from itportal.memo import Memo

register = template.Library()

CHART_MEMO = Memo(256)


@register.simple_tag
def chart(chart):
    key = (translation.get_language(), repr(chart))
    html = CHART_MEMO.get(key)
    if html is None:
        html = get_template("charts/chart.html").render({"chart": chart})
        CHART_MEMO.put(key, html)
    return mark_safe(html)  # the template's output, escaped as it rendered
