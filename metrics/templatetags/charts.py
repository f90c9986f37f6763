"""``{% chart some_chart %}``: a chart from metrics.charts with its text alternative and table."""

from django import template

register = template.Library()


@register.inclusion_tag("charts/chart.html")
def chart(chart):
    return {"chart": chart}
