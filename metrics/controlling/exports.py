"""Cost allocation exports for the finance system: CSV for German Excel, and XLSX."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable
from decimal import Decimal

from django.utils.translation import gettext as _
from openpyxl import Workbook

from metrics.controlling.selectors import CostRow

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
    return f"{value:.2f}".replace(".", ",")


def costs_csv(rows: Iterable[CostRow]) -> bytes:
    """UTF-8 with BOM, ``;`` separated, decimal comma: what German Excel opens directly."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(_header())
    for row in rows:
        writer.writerow(
            [
                row.month.strftime("%Y-%m"),
                escape_formula(row.cost_centre_code),
                escape_formula(row.cost_centre_name),
                row.fulfilled,
                _amount_de(row.once),
                row.entitlements,
                _amount_de(row.monthly),
                _amount_de(row.total),
            ]
        )
    return out.getvalue().encode("utf-8-sig")


def costs_xlsx(rows: Iterable[CostRow]) -> bytes:
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
    return out.getvalue()
