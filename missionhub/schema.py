"""The OpenAPI schema (drf-spectacular) says what the server really answers.

Each view declares its success body and the errors its own code raises (403, 404, 409,
422, ...). What the framework answers on every view is added here from the view's own
configuration, so it cannot drift from it:

- 401 wherever a token is read (an expired or forged token is refused even where none is
  needed), and on the token endpoints, which declare it themselves;
- 429, with `Retry-After`, wherever a throttle applies;
- 400 and 415 wherever a JSON body is read (malformed JSON, or another content type);
- 404 on paginated lists (a page past the end) and wherever the path names an object.

Amounts and durations carry their limits from the settings (`SettingRangeIntegerField`);
lists the server pages are described as pages; methods a view refuses on purpose
(`schema_refused_methods`) are documented as answering 405.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema as SpectacularAutoSchema
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.pagination import PageNumberPagination

from .errors import ErrorSerializer

ERROR_DESCRIPTIONS = {
    400: "Invalid input or a body that is not valid JSON: `code` names the problem, `errors` lists it field by field.",
    401: "No token, or an invalid or expired one (`not_authenticated`, `token_not_valid`), or wrong credentials.",
    402: "The payment provider declined the charge (`payment_declined`).",
    403: "Signed in but not allowed (`code` says why).",
    404: "No such object, or a page number past the last page.",
    405: "This method is not allowed here (`method_not_allowed`).",
    409: "The mission's state forbids it (`mission_closed`, `invalid_transition`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "This `Idempotency-Key` was used with a different request (`idempotency_key_reused`).",
    429: "Too many requests (`throttled`): try again after `Retry-After` seconds.",
}

RETRY_AFTER = OpenApiParameter(
    "Retry-After",
    {"type": "integer", "minimum": 0},
    OpenApiParameter.HEADER,
    required=True,
    response=[429],
    description="Seconds to wait before trying again.",
)


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The error answers `codes`, each with the error body, for `@extend_schema(responses=...)`."""
    return {code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code]) for code in codes}


class Pagination(PageNumberPagination):
    """DRF's page-number pages, described as the server sends them: all four keys, always."""

    def get_paginated_response_schema(self, schema):
        page = super().get_paginated_response_schema(schema)
        page["required"] = ["count", "next", "previous", "results"]
        return page

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_query_param:
                parameter["schema"] = {"type": "integer", "minimum": 1}
        return parameters


class SettingRangeIntegerFieldExtension(OpenApiSerializerFieldExtension):
    """Amounts and durations: an integer between the two settings the field names."""

    target_class = "missionhub.fields.SettingRangeIntegerField"
    match_subclasses = True

    def map_serializer_field(self, auto_schema, direction):
        field = self.target
        return {
            "type": "integer",
            "minimum": getattr(settings, field.min_setting),
            "maximum": getattr(settings, field.max_setting),
        }


class AutoSchema(SpectacularAutoSchema):
    """Names nested serializers after their view (RegisterApi.InputSerializer -> RegisterInput)
    and adds the answers every view of its kind gives (see the module's docstring)."""

    def get_serializer_name(self, serializer, direction):
        qualname = type(serializer).__qualname__
        if "." not in qualname:
            return super().get_serializer_name(serializer, direction)
        return qualname.replace("Api.", "").replace(".", "")

    def get_override_parameters(self):
        parameters = list(super().get_override_parameters())
        if self.view.get_throttles():
            parameters.append(RETRY_AFTER)
        return parameters

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        codes = set()
        if self.view.get_authenticators():
            codes.add(401)
        if self.view.get_throttles():
            codes.add(429)
        if self._reads_json_body():
            codes |= {400, 415}
        if self._has_path_parameters() or self._is_paginated():
            codes.add(404)
        for code, response in error_responses(*codes).items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(response, str(code), direction=direction)
        return dict(sorted(responses.items()))

    def _reads_json_body(self) -> bool:
        return self.method in ("POST", "PUT", "PATCH") and self.get_request_serializer() is not None

    def _has_path_parameters(self) -> bool:
        return "{" in self.path

    def _is_paginated(self) -> bool:
        return self.method == "GET" and getattr(self.view, "pagination_class", None) is not None


OPERATION_SUFFIXES = {"PUT": "update", "PATCH": "partial_update", "DELETE": "destroy"}


def add_refused_methods(result, generator, request, public):
    """Document the methods a view refuses on purpose (`schema_refused_methods`) as 405s.

    DRF answers 405 to any method a view lacks; the contract names some of them (nobody
    edits or deletes a mission), so clients see them with what they answer.
    """
    views = {path: callback.cls for path, _, _, callback in generator.endpoints}
    for path, view in views.items():
        refused = getattr(view, "schema_refused_methods", ())
        if not refused or path not in result["paths"]:
            continue
        item = result["paths"][path]
        model = next(iter(item.values()))
        prefix = model["operationId"].rsplit("_", 1)[0]
        for method in refused:
            responses = {
                "401": _error_ref(401),
                "404": _error_ref(404),  # a path value the URL does not take: no such object
                "405": _error_ref(405),
                "429": {**_error_ref(429), "headers": model["responses"]["429"]["headers"]},
            }
            item[method.lower()] = {
                "operationId": f"{prefix}_{OPERATION_SUFFIXES[method]}",
                "description": f"Always answers 405. {' '.join((view.__doc__ or '').split())}".strip(),
                "parameters": [p for p in model.get("parameters", []) if p["in"] == "path"],
                "tags": model.get("tags", []),
                "security": model.get("security", []),
                "responses": responses,
            }
    return result


def _error_ref(code: int) -> dict:
    return {
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        "description": ERROR_DESCRIPTIONS[code],
    }
