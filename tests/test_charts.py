"""Server-side SVG charts: well-formed, accessible, escaped, with a text alternative."""

import xml.etree.ElementTree as ET
from decimal import Decimal

import pytest
from django.template import Context, Template
from django.utils import translation

from metrics.charts import Series, bar_chart, describe, line_chart

SVG = "{http://www.w3.org/2000/svg}"
MONTHS = ["01/2025", "02/2025", "03/2025", "04/2025"]
EVIL = '<script>alert("x")</script> & "Co"'


@pytest.fixture(autouse=True)
def english():
    with translation.override("en"):
        yield


def parse(chart):
    return ET.fromstring(str(chart.svg))  # noqa: S314 - the portal's own markup


def test_line_chart_is_well_formed_and_accessible():
    chart = line_chart(
        chart_id="orders",
        title="Orders per month",
        x_labels=MONTHS,
        series=[Series("Orders", [12, 15, None, 30]), Series("Forecast", [None] * 3 + [31])],
        y_label="Orders",
    )
    root = parse(chart)
    assert root.tag == f"{SVG}svg"
    assert root.get("role") == "img"
    assert root.get("aria-labelledby") == "orders-title orders-desc"
    assert root.find(f"{SVG}title").get("id") == "orders-title"
    assert root.find(f"{SVG}title").text == "Orders per month"
    assert root.find(f"{SVG}desc").get("id") == "orders-desc"
    # The gap (None) splits the first series into two lines; the second has one point.
    assert len(root.findall(f"{SVG}polyline")) == 3
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert "01/2025" in texts and "04/2025" in texts  # x-axis labels
    assert "Orders" in texts  # y-axis title and legend
    # Series differ by line pattern, not colour only.
    dashes = {p.get("stroke-dasharray") for p in root.findall(f"{SVG}polyline")}
    assert len(dashes) == 2


def test_labels_are_escaped_and_stay_inert():
    chart = bar_chart(
        chart_id='x" onload="alert(1)',
        title=EVIL,
        x_labels=[EVIL, "b"],
        series=[Series(EVIL, [1, 2])],
    )
    raw = str(chart.svg)
    assert "<script" not in raw
    assert "onload=" not in raw.replace("&quot;", "")  # the id lost its quotes and spaces
    root = parse(chart)
    assert not list(root.iter(f"{SVG}script"))
    assert root.find(f"{SVG}title").text == EVIL  # shown as text, exactly
    assert root.get("aria-labelledby").split() == [
        "x--onload--alert-1--title",
        "x--onload--alert-1--desc",
    ]


def test_text_alternative_sentences():
    assert describe(Series("Orders", [12, 40, 30]), ["Jan", "Feb", "Nov"]) == (
        "Orders rose from 12 in Jan to 30 in Nov. Highest: 40 in Feb."
    )
    assert describe(Series("Costs", [Decimal("10.50"), Decimal("5")]), ["Jan", "Feb"],
                    decimals=2) == "Costs fell from 10.50 in Jan to 5.00 in Feb."  # fmt: skip
    assert describe(Series("Orders", [3, 3]), ["Jan", "Feb"]) == ("Orders: 3 in Jan and 3 in Feb.")
    assert describe(Series("Orders", [None, 7]), ["Jan", "Feb"]) == "Orders: 7 in Feb."
    assert describe(Series("Orders", [None, None]), ["Jan", "Feb"]) == "Orders: no values."


def test_german_numbers_in_the_text_alternative():
    with translation.override("de"):
        text = describe(Series("Kosten", [Decimal("1234.5"), Decimal("10")]), ["a", "b"],
                        decimals=2)  # fmt: skip
    assert "1.234,50" in text and "10,00" in text


def test_all_zero_and_empty_series_render():
    for values in ([0, 0, 0, 0], [None, None, None, None]):
        root = parse(line_chart(chart_id="z", title="t", x_labels=MONTHS,
                                series=[Series("s", values)]))  # fmt: skip
        assert root.find(f"{SVG}title").text == "t"
    assert parse(bar_chart(chart_id="e", title="t", x_labels=[], series=[]))


def test_series_must_match_the_labels():
    with pytest.raises(ValueError):
        line_chart(chart_id="x", title="t", x_labels=MONTHS, series=[Series("s", [1, 2])])


def test_many_months_thin_out_the_axis_labels():
    labels = [f"{m:02d}/20{y}" for y in (24, 25) for m in range(1, 13)]
    root = parse(line_chart(chart_id="l", title="t", x_labels=labels,
                            series=[Series("s", list(range(24)))]))  # fmt: skip
    shown = [t.text for t in root.iter(f"{SVG}text") if t.text in labels]
    assert 2 <= len(shown) <= 13
    assert labels[-1] in shown  # the latest month is always labelled
    assert labels[-2] not in shown  # and never crowded by its neighbour


def test_template_tag_renders_figure_with_caption_and_data_table():
    chart = bar_chart(
        chart_id="costs",
        title="Costs",
        x_labels=["01/2025", "02/2025"],
        series=[Series(EVIL, [Decimal("12.50"), Decimal("3")])],
        decimals=2,
    )
    html = Template("{% load charts %}{% chart c %}").render(Context({"c": chart}))
    assert "<script>" not in html
    assert '<figure class="chart" id="costs">' in html
    assert "<figcaption><strong>Costs.</strong>" in html
    assert "rose" not in html and "fell from 12.50 in 01/2025 to 3.00 in 02/2025" in html
    assert '<th scope="row">01/2025</th><td>12.50</td>' in html
    assert "&lt;script&gt;" in html


def _luminance(hex_colour):
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def test_text_and_lines_contrast_with_the_white_background():
    """WCAG 1.4.3 / 1.4.11: text ≥ 4.5:1, graphics ≥ 3:1 on white (axe cannot check SVG)."""
    chart = line_chart(
        chart_id="c",
        title="t",
        x_labels=MONTHS,
        series=[Series(f"s{i}", [1, 2, 3, 4]) for i in range(6)],
        y_label="y",
    )
    root = parse(chart)
    white = _luminance("#ffffff")
    for element in root.iter():
        for attribute in ("fill", "stroke"):
            colour = element.get(attribute)
            if not colour or not colour.startswith("#") or colour == "#ffffff":
                continue
            ratio = (white + 0.05) / (_luminance(colour) + 0.05)
            needed = 4.5 if element.tag == f"{SVG}text" else 3
            if colour == "#c8c8c8":
                continue  # grid lines: decoration, values are on the axis labels
            assert ratio >= needed, (element.tag, colour, ratio)


def test_count_axis_has_whole_ticks_and_long_legends_wrap():
    chart = line_chart(
        chart_id="w",
        title="t",
        x_labels=MONTHS,
        series=[Series(f"A fairly long series name number {i}", [0, 1, 2, 2]) for i in range(4)],
    )
    root = parse(chart)
    ticks = [t.text for t in root.iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks == ["0", "1", "2"]
    assert root.get("viewBox") != "0 0 720 320"  # grew for a second legend row
    legend = [t.text for t in root.iter(f"{SVG}text") if t.text and "series name" in t.text]
    assert len(legend) == 4  # full names, none dropped
    fractions = line_chart(chart_id="f", title="t", x_labels=["a", "b"],
                           series=[Series("s", [0.5, 2])], decimals=1)  # fmt: skip
    ticks = [t.text for t in parse(fractions).iter(f"{SVG}text") if t.get("text-anchor") == "end"]
    assert ticks == ["0.0", "0.5", "1.0", "1.5", "2.0"]
