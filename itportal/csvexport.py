"""Streamed CSV downloads: rows are written as they are read, so exports of any size keep
memory flat. A BOM first, so spreadsheet programs read UTF-8 (umlauts) correctly."""

import csv

from django.http import StreamingHttpResponse


class _Echo:
    def write(self, value):
        return value


def stream_csv(rows, fieldnames, filename: str, header: dict | None = None):
    """``rows``: an iterable of dicts keyed by ``fieldnames``; ``header`` the column titles
    (the field names themselves by default)."""
    writer = csv.DictWriter(_Echo(), fieldnames=fieldnames)

    def lines():
        yield "\ufeff" + writer.writerow(header or dict(zip(fieldnames, fieldnames, strict=True)))
        for row in rows:
            yield writer.writerow(row)

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
