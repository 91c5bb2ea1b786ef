"""One JSON shape (:class:`~biotag.serve.schemas.ErrorModel`) for every error response,
whether it comes from biotag's input checks, pydantic's request validation, the body
size limit or routing."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from biotag.errors import FormatError, InputError
from biotag.serve.schemas import ErrorModel

# status codes of the plain HTTP errors raised by the framework -> our error codes
_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    413: "too_large",
    415: "unsupported_media_type",
}


class ServiceError(Exception):
    """An error answered with ``status`` and an :class:`ErrorModel` body."""

    def __init__(
        self,
        status: int,
        error: str,
        message: str,
        *,
        document: str | None = None,
        field: str | None = None,
        line: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body = ErrorModel(error=error, message=message, document=document, field=field, line=line)
        self.headers = headers

    @classmethod
    def from_input_error(cls, error: InputError) -> ServiceError:
        """A body that cannot be parsed in its declared format is a 400; a parsed but
        inconsistent document (offsets outside the text...) a 422."""
        status, code = (400, "bad_format") if isinstance(error, FormatError) else (422, "invalid_input")
        return cls(status, code, str(error), document=error.document, field=error.field, line=error.line)

    def response(self) -> JSONResponse:
        return JSONResponse(self.body.model_dump(exclude_none=True), status_code=self.status, headers=self.headers)


def body_too_large(limit: int) -> ServiceError:
    return ServiceError(413, "too_large", f"the request body is larger than the limit of {limit} bytes")


class _BodyOverLimit(StarletteHTTPException):
    """Raised from ``receive``: FastAPI lets HTTP exceptions raised while it reads a body
    through to the handlers (any other exception would become a 400)."""

    def __init__(self) -> None:
        super().__init__(413)


class BodyLimitMiddleware:
    """413 with our JSON error for a body over ``limit`` bytes: at once when its
    Content-Length says so, else as soon as the bytes received pass the limit (chunked
    bodies). Starlette's own RequestBodyLimitMiddleware answers in plain text and
    replaces any response the app sends, so it cannot give a JSON error."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            await body_too_large(self.limit).response()(scope, receive, send)
            return
        received = 0

        async def receive_within_limit() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise _BodyOverLimit()
            return message

        await self.app(scope, receive_within_limit, send)


def _field_path(loc: Sequence[Any]) -> str:
    """``("body", "documents", 2, "entities")`` -> ``"documents[2].entities"``."""
    parts = list(loc[1:] if loc and loc[0] in ("body", "query", "header", "path") else loc)
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or str(loc[0] if loc else "body")


def _document_of(loc: Sequence[Any], body: Any) -> str | None:
    """The id of the document a validation error is in, when the error is inside
    ``documents[i]`` of a batch (its position when it has no usable id)."""
    parts = list(loc)
    if len(parts) >= 3 and parts[:2] == ["body", "documents"] and isinstance(parts[2], int):
        index = parts[2]
        try:
            doc_id = body["documents"][index].get("id")
        except (TypeError, KeyError, IndexError, AttributeError):
            doc_id = None
        return str(doc_id) if isinstance(doc_id, (str, int)) else f"#{index}"
    return None


def validation_error(exc: RequestValidationError) -> ServiceError:
    problems = exc.errors()
    first = problems[0] if problems else {"loc": ("body",), "msg": "invalid request"}
    field = _field_path(first["loc"])
    document = _document_of(first["loc"], exc.body)
    where = (f"document {document}: " if document else "") + f"field {field!r}: "
    error = ServiceError(422, "invalid_request", where + first["msg"], document=document, field=field)
    error.body.details = [
        {"field": _field_path(p["loc"]), "message": p["msg"], "type": p.get("type")} for p in problems
    ]
    return error


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ServiceError)
    async def _service(request: Request, exc: ServiceError) -> JSONResponse:
        return exc.response()

    @app.exception_handler(InputError)
    async def _input(request: Request, exc: InputError) -> JSONResponse:
        return ServiceError.from_input_error(exc).response()

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        return validation_error(exc).response()

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if isinstance(exc, _BodyOverLimit):
            return body_too_large(request.app.state.settings.body_limit).response()
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return ServiceError(exc.status_code, code, str(exc.detail), headers=getattr(exc, "headers", None)).response()
