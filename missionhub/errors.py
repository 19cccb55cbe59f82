"""Errors with a machine-readable code, and the one DRF handler that renders them.

Every app raises subclasses of `MissionHubError` next to the code that raises them.
The API answers `{"code", "detail"}` (plus `errors`, field by field, for invalid
input); pages turn the same exceptions into form errors.
"""

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from django.utils.translation import gettext_lazy as _
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)


class MissionHubError(Exception):
    code = "error"
    http_status = status.HTTP_400_BAD_REQUEST
    message = _("The request could not be completed.")
    # The input field the error is about, if any: pages show it next to that field.
    field: str | None = None

    def __init__(self, message: str | None = None):
        self.message = str(message or self.message)  # translated into the request's language
        super().__init__(self.message)

    def as_data(self) -> dict:
        data = {"code": self.code, "detail": self.message}
        if self.field:
            data["errors"] = {self.field: [{"message": self.message, "code": self.code}]}
        return data


class RequestTooLarge(MissionHubError):
    code = "request_too_large"
    http_status = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    message = _("The request body is too large.")


# DRF's errors mirror the serializer's nesting (a list of objects is three levels);
# anything deeper is rendered as its first message, so rendering never recurses far.
_ERRORS_MAX_DEPTH = 8


def _leaf(detail) -> dict:
    """The first message in a nested error structure, found without recursion."""
    while isinstance(detail, dict | list) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return {"message": str(detail), "code": getattr(detail, "code", "invalid")}


def _field_errors(detail, depth: int = 0) -> dict:
    """DRF's nested ErrorDetail structure as {field: [{"message", "code"}]}."""
    if depth >= _ERRORS_MAX_DEPTH:
        return [_leaf(detail)]
    if isinstance(detail, dict):
        return {key: _field_errors(value, depth + 1) for key, value in detail.items()}
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail) for item in detail):
            return [{"message": str(item), "code": item.code} for item in detail]
        return [_field_errors(item, depth + 1) for item in detail]
    return [{"message": str(detail), "code": getattr(detail, "code", "invalid")}]


def _first_error(errors) -> dict:
    if isinstance(errors, dict):
        return _first_error(next(iter(errors.values())))
    first = errors[0]
    return first if "code" in first and "message" in first else _first_error(first)


def api_exception_handler(exc, context):
    if isinstance(exc, RequestDataTooBig):  # over DATA_UPLOAD_MAX_MEMORY_SIZE
        exc = RequestTooLarge()
    if isinstance(exc, MissionHubError):
        return Response(exc.as_data(), status=exc.http_status)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None:
        return None  # an unexpected error: Django logs it and answers 500
    if isinstance(exc, exceptions.ValidationError):
        detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
        errors = _field_errors(detail)
        first = _first_error(errors)
        response.data = {"code": first["code"], "detail": first["message"], "errors": errors}
    else:
        detail, code = exc.detail, exc.get_codes()
        if isinstance(detail, dict):  # simplejwt's token errors: {"detail", "code", "messages"}
            code = str(detail.get("code", exc.default_code))
            detail = detail.get("detail", exc.default_detail)
        response.data = {"code": code, "detail": str(detail)}
    return response


class FieldErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    code = serializers.CharField()


class ErrorSerializer(serializers.Serializer):
    """The body of every 4xx answer (for the OpenAPI schema)."""

    code = serializers.CharField(help_text="Machine-readable, e.g. insufficient_funds, mission_closed.")
    detail = serializers.CharField()
    errors = serializers.DictField(
        child=FieldErrorSerializer(many=True), required=False, help_text="Invalid input, field by field."
    )
