"""OpenAPI details drf-spectacular cannot infer: the token scheme and the error responses."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_field

from metrics.controlling.filtersets import MonthFilter

# The controlling pages' month filter, described from here so metrics needs no OpenAPI code.
extend_schema_field({"type": "string", "pattern": r"^\d{4}-\d{2}(-\d{2})?$", "example": "2026-01"})(
    MonthFilter
)

ERROR_DESCRIPTIONS = {
    "400": "Invalid input: each field named with its problems.",
    "401": "No valid credentials: missing, unknown, revoked or expired token.",
    "403": "Signed in, but not allowed to do this.",
    "404": "No such object, or not one you may see.",
    "409": "The object's state does not allow this (any more).",
    "429": "Too many requests with this token; retry after the time in Retry-After.",
}


class PortalAutoSchema(AutoSchema):
    """Every operation documents the error bodies it can return (docs/api.md, "Errors"),
    and has a short operationId: ``<basename>_<action>``, e.g. ``request_approve``."""

    def get_operation_id(self):
        action = getattr(self.view, "action", None)
        basename = getattr(self.view, "basename", None)
        if action and basename:
            return f"{basename}_{action}"
        return super().get_operation_id().removeprefix("v1_")

    def _get_response_bodies(self, direction="response"):
        from api.serializers import ErrorSerializer, ValidationErrorSerializer

        responses = super()._get_response_bodies(direction)
        method = self.method.upper()
        wanted = ["401", "403"]
        if method != "GET" or self._get_filter_parameters() or self._is_list_view():
            wanted.append("400")
        if "{" in self.path:
            wanted.append("404")
        wanted.append("429")
        for code in wanted:
            if code in responses:
                continue
            serializer = ValidationErrorSerializer if code == "400" else ErrorSerializer
            responses[code] = self._get_response_for_code(
                OpenApiResponse(serializer, description=ERROR_DESCRIPTIONS[code]), code
            )
        return responses


class ApiTokenScheme(OpenApiAuthenticationExtension):
    target_class = "api.authentication.ApiTokenAuthentication"
    name = ["TokenAuth", "BearerAuth"]

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in self.name]  # either header form, not both

    def get_security_definition(self, auto_schema):
        return [
            {
                "type": "apiKey",
                "in": "header",
                "name": "Authorization",
                "description": "A personal API token: `Authorization: Token <key>`.",
            },
            {
                "type": "http",
                "scheme": "bearer",
                "description": "The same token as a bearer token: `Authorization: Bearer <key>`.",
            },
        ]
