"""The shop API's one error shape: {"error": {"code", "message", "field"?}} with its status."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response
from werkzeug.exceptions import HTTPException

from checkout.services.errors import ServiceError
from checkout.web.shop_api.body import answer


def error_response(status: int, code: str, message: str, field: str | None = None) -> Response:
    body: dict[str, Any] = {"code": code, "message": message}
    if field:
        body["field"] = field
    return answer({"error": body}, status)


def service_error(error: ServiceError) -> Response:
    return error_response(error.http_status, error.code, error.message, error.field)


def http_error(error: HTTPException) -> Response:
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(error.code or 500, code, error.description or error.name)


def register(bp: Blueprint) -> None:
    bp.register_error_handler(ServiceError, service_error)
    bp.register_error_handler(HTTPException, http_error)
