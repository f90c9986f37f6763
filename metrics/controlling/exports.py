"""Exports: cost allocation for the finance system (CSV for German Excel, and XLSX); lead
times and satisfaction as CSV.

Each renderer yields the file in pieces for a ``StreamingHttpResponse``: CSV a few hundred
lines at a time, XLSX (a zip archive, complete only at the end) in chunks once the workbook
is written."""

from __future__ import annotations

import csv
import datetime
import io
import itertools
from collections.abc import Iterable, Iterator
from decimal import ROUND_HALF_EVEN, Decimal

from django.utils.translation import gettext as _
from openpyxl import Workbook

from metrics.controlling.selectors import AnomalyRow, CostRow, LeadTimeRow, SatisfactionRow

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def escape_formula(value: str) -> str:
    """Prefix an apostrophe so a spreadsheet shows the text instead of running it."""
    return f"'{value}" if value.startswith(FORMULA_PREFIXES) else value


def _header() -> list[str]:
    return [
        _("Month"),
        _("Cost centre"),
        _("Name"),
        _("Fulfilled requests"),
        _("One-off costs (EUR)"),
        _("Charged entitlements"),
        _("Monthly costs (EUR)"),
        _("Total (EUR)"),
    ]


def _amount_de(value: Decimal) -> str:
    text = str(value)
    # Amounts of two decimal places (the database's sums) print so already, three times
    # faster than formatting; any other is formatted.
    if text[-3:-2] != "." or "E" in text:
        text = f"{value:.2f}"
    return text.replace(".", ",")


# Lines per streamed piece. Line by line, the server wrote every line as a chunk of its
# own (a system call and the chunk's framing each: 229 for the cost export of a year). A
# piece of a few hundred lines (some 16 KB) still streams a file of any size with flat
# memory.
CSV_LINES = 256


def _csv(header: list[str], rows: Iterable[list]) -> Iterator[bytes]:
    """UTF-8 with BOM, ``;`` separated: what German Excel opens directly; in pieces of
    ``CSV_LINES`` lines, the header in the first."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    encoding = "utf-8-sig"  # the BOM before the first piece only
    rows = iter(rows)
    while batch := list(itertools.islice(rows, CSV_LINES)):
        writer.writerows(batch)
        yield buffer.getvalue().encode(encoding)
        encoding = "utf-8"
        buffer.seek(0)
        buffer.truncate()
    if encoding != "utf-8":  # no rows: the header alone
        yield buffer.getvalue().encode(encoding)


def costs_csv(rows: Iterable[CostRow]) -> Iterator[bytes]:
    """Decimal comma, amounts with two places."""
    months: dict[datetime.date, str] = {}  # strftime() was a third of a line's time

    def month(day: datetime.date) -> str:
        text = months.get(day)
        if text is None:
            text = months[day] = day.strftime("%Y-%m")
        return text

    return _csv(
        _header(),
        (
            [
                month(row.month),
                escape_formula(row.cost_centre_code),
                escape_formula(row.cost_centre_name),
                row.fulfilled,
                _amount_de(row.once),
                row.entitlements,
                _amount_de(row.monthly),
                _amount_de(row.total),
            ]
            for row in rows
        ),
    )


CHUNK = 64 * 1024


def costs_xlsx(rows: Iterable[CostRow]) -> Iterator[bytes]:
    workbook = Workbook(write_only=True)
    sheet = workbook.create_sheet(_("Costs"))
    sheet.append(_header())
    for row in rows:
        sheet.append(
            [
                row.month.strftime("%Y-%m"),
                escape_formula(row.cost_centre_code),
                escape_formula(row.cost_centre_name),
                row.fulfilled,
                row.once,
                row.entitlements,
                row.monthly,
                row.total,
            ]
        )
    out = io.BytesIO()
    workbook.save(out)
    data = out.getbuffer()
    for start in range(0, len(data), CHUNK):
        yield bytes(data[start : start + CHUNK])


def _service(row) -> str:
    return _("All services") if row.is_total else escape_formula(row.service)


def _hours_de(value: datetime.timedelta | None) -> str:
    """Hours with two decimals and a decimal comma; empty where there is no figure."""
    if value is None:
        return ""
    hours = Decimal(value.total_seconds()) / 3600
    return _amount_de(hours.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


def lead_times_csv(rows: Iterable[LeadTimeRow]) -> Iterator[bytes]:
    """Lead times in hours and the automation rate in per cent, one line per service."""
    header = [
        _("Service"),
        _("Fulfilled requests"),
        _("With approval steps"),
        _("Approval waiting p50 (hours)"),
        _("Approval waiting p90 (hours)"),
        _("Fulfilment p50 (hours)"),
        _("Fulfilment p90 (hours)"),
        _("Total p50 (hours)"),
        _("Total p90 (hours)"),
        _("Fulfilled automatically"),
        _("Automation rate (per cent)"),
    ]
    lines = []
    for row in rows:
        rate = row.automation_rate
        percent = (
            ""
            if rate is None
            else _amount_de(
                (Decimal(rate.numerator) * 100 / rate.denominator).quantize(
                    Decimal("0.01"), rounding=ROUND_HALF_EVEN
                )
            )
        )
        lines.append(
            [
                _service(row),
                row.fulfilled,
                row.with_approval,
                *(
                    _hours_de(value)
                    for value in (
                        row.approval_p50,
                        row.approval_p90,
                        row.fulfilment_p50,
                        row.fulfilment_p90,
                        row.total_p50,
                        row.total_p90,
                    )
                ),
                row.automated,
                percent,
            ]
        )
    return _csv(header, lines)


def satisfaction_csv(rows: Iterable[SatisfactionRow]) -> Iterator[bytes]:
    header = [
        _("Service"),
        _("Fulfilled requests"),
        _("Ratings"),
        _("Average score"),
        _("Score 1"),
        _("Score 2"),
        _("Score 3"),
        _("Score 4"),
        _("Score 5"),
    ]
    lines = [
        [
            _service(row),
            row.fulfilled,
            row.rated,
            "" if row.average is None else _amount_de(row.average),
            *row.distribution,
        ]
        for row in rows
    ]
    return _csv(header, lines)


def _number_de(value: float, places: int) -> str:
    return f"{value:.{places}f}".replace(".", ",")


def anomalies_csv(rows: Iterable[AnomalyRow]) -> Iterator[bytes]:
    """Months outside the forecast's band: one line per service and month."""
    header = [
        _("Service"),
        _("Category"),
        _("Month"),
        _("Orders"),
        _("Expected"),
        _("Ordinary range from"),
        _("Ordinary range to"),
        _("Direction"),
        _("Deviation (orders)"),
        _("Deviation (per cent)"),
        _("Months of history"),
    ]
    lines = (
        [
            escape_formula(row.service),
            escape_formula(row.category),
            f"{row.month:%Y-%m}",
            row.orders,
            _number_de(row.band.expected, 1),
            _number_de(row.band.low, 1),
            _number_de(row.band.high, 1),
            _("more") if row.direction == "up" else _("fewer"),
            _number_de(row.size, 1),
            "" if row.percent is None else _number_de(row.percent, 0),
            row.history_months,
        ]
        for row in rows
    )
    return _csv(header, lines)


def reclaim_csv(rows: Iterable) -> Iterator[bytes]:
    """Rarely used entitlements (assist.reclaim.Candidate): one line per entitlement."""
    header = [
        _("Holder"),
        _("Personnel number"),
        _("Department"),
        _("Service"),
        _("Since"),
        _("Monthly price (EUR)"),
        _("Risk"),
        _("Why"),
    ]
    lines = (
        [
            escape_formula(row.entitlement.holder.display_name),
            escape_formula(row.entitlement.holder.personnel_number),
            escape_formula(row.entitlement.holder.department.name),
            escape_formula(row.entitlement.item.name),
            f"{row.entitlement.granted_at:%Y-%m-%d}",
            _amount_de(row.monthly),
            row.risk,
            escape_formula("; ".join(row.reasons)),
        ]
        for row in rows
    )
    return _csv(header, lines)
