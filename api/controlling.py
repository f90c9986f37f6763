"""Controlling reports over the API: the pages' selectors and FilterSets, as JSON rows.

A report is a ``Report`` subclass naming its FilterSet, row serializer and selector call;
``REPORTS`` lists them and ``api/urls.py`` routes each to ``/api/v1/controlling/<name>/``.
Adding one (e.g. lead times) is a class here and one line in ``REPORTS``.
"""

from __future__ import annotations

from django.utils.translation import gettext as _
from django_filters.rest_framework import DjangoFilterBackend
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.generics import GenericAPIView
from rest_framework.permissions import IsAuthenticated

from api import serializers as s
from api.permissions import SeesControlling
from metrics.controlling import selectors
from metrics.controlling.filtersets import ControllingFilterSet, UsageFilterSet
from requests_app.models import ServiceRequest


class Report(GenericAPIView):
    """Rows of one controlling report, filtered like its page, paginated and orderable."""

    permission_classes = [IsAuthenticated, SeesControlling]
    filterset_class = ControllingFilterSet
    row_serializer: type[serializers.Serializer]
    # The FilterSet narrows the requests counted, not the rows: get() applies it itself; the
    # backend is listed so the schema shows the FilterSet's parameters.
    filter_backends = [DjangoFilterBackend]
    queryset = ServiceRequest.objects.none()
    name = ""
    summary = ""

    def rows(self, scope, filterset, first, last) -> list:
        raise NotImplementedError

    def get_serializer_class(self):
        return self.row_serializer

    def get(self, request):
        filterset = self.filterset_class(
            request.query_params, queryset=ServiceRequest.objects.all(), request=request
        )
        if not filterset.is_valid():
            raise serializers.ValidationError(filterset.errors)
        first, last = filterset.period()
        rows = self.rows(filterset.scope(), filterset, first, last)
        rows = self._ordered(rows, request.query_params.get("ordering", ""))
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(self.row_serializer(page, many=True).data)

    def _ordered(self, rows: list, ordering: str) -> list:
        """Sort the (already aggregated) rows by one of the row's fields, ``-`` descending."""
        if not ordering:
            return rows
        fields = self.row_serializer().fields
        key = ordering.lstrip("-")
        if key not in fields:
            raise serializers.ValidationError(
                {"ordering": [_("Unknown field “%(field)s”.") % {"field": key[:50]}]}
            )
        source = fields[key].source or key

        def sort_key(row):
            value = getattr(row, source)
            return (value is None, value)  # rows without a value (no data) last

        return sorted(rows, key=sort_key, reverse=ordering.startswith("-"))

    @classmethod
    def openapi(cls):
        """The OpenAPI description: the FilterSet's parameters, paginated rows."""
        return extend_schema(
            summary=cls.summary,
            tags=["controlling"],
            parameters=[
                *(
                    OpenApiParameter(
                        name,
                        str,
                        description=_("Calendar month, YYYY-MM."),
                        pattern=r"^\d{4}-\d{2}(-\d{2})?$",
                    )
                    for name in ("period_from", "period_to")
                ),
                OpenApiParameter(
                    "ordering",
                    str,
                    description=_("A row field; prefix with - for descending."),
                    enum=[
                        f"{sign}{name}"
                        for name in cls.row_serializer().fields
                        for sign in ("", "-")
                    ],
                ),
            ],
            responses={200: cls.row_serializer(many=True)},
        )


class CostReport(Report):
    name = "costs"
    summary = "Costs per cost centre and month (controlling, IT admins)"
    filterset_class = ControllingFilterSet
    row_serializer = s.CostRowSerializer

    def rows(self, scope, filterset, first, last):
        return selectors.costs_per_cost_centre(scope, first=first, last=last)


class UsageReport(Report):
    name = "usage"
    summary = "Usage per service and month (controlling, IT admins)"
    filterset_class = UsageFilterSet
    row_serializer = s.UsageRowSerializer

    def rows(self, scope, filterset, first, last):
        return selectors.usage_per_service(
            scope, first=first, last=last, breakdown=filterset.breakdown_value()
        )


class LeadTimeReport(Report):
    name = "lead-times"
    summary = "Lead times (p50/p90) and automation per service (controlling, IT admins)"
    row_serializer = s.LeadTimeRowSerializer

    def rows(self, scope, filterset, first, last):
        return selectors.lead_times_per_service(scope, first=first, last=last)


class SatisfactionReport(Report):
    name = "satisfaction"
    summary = "Ratings per service (controlling, IT admins)"
    row_serializer = s.SatisfactionRowSerializer

    def rows(self, scope, filterset, first, last):
        return selectors.satisfaction_per_service(scope, first=first, last=last)


REPORTS: list[type[Report]] = [CostReport, UsageReport, LeadTimeReport, SatisfactionReport]


def report_views():
    """(name, view) for the URLconf, each with its OpenAPI description."""
    return [(report.name, report.openapi()(report).as_view()) for report in REPORTS]
