"""Every refusal as an RFC 9457 problem (application/problem+json) that says exactly what is wrong.

Handlers raise ProblemError; one middleware turns it, and aiohttp's own HTTP errors (404, 405),
into problem responses. Anything else escaping a handler is a bug: logged, answered 500.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

import structlog
from aiohttp import web

from producers.errors import ProducerError

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "urn:liveops:problem:"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

log = structlog.get_logger(__name__)


class ProblemError(ProducerError):
    """A request is refused; carries the HTTP status and the problem document's fields."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {title}: {detail}")
        self.status = status
        self.slug = slug
        self.title = title
        self.detail = detail
        self.headers = dict(headers or {})

    def to_response(self) -> web.Response:
        body = {
            "type": PROBLEM_TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        return web.Response(
            status=self.status,
            body=json.dumps(body).encode(),
            headers={**self.headers, "Content-Type": PROBLEM_CONTENT_TYPE},
        )


def bad_request(detail: str) -> ProblemError:
    return ProblemError(400, "malformed-request", "Malformed request", detail)


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(
        401,
        "unauthorized",
        "Missing or invalid bearer token",
        detail,
        {"WWW-Authenticate": 'Bearer error="invalid_token"'},
    )


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Not allowed for this player", detail)


def too_large(limit_bytes: int) -> ProblemError:
    return ProblemError(
        413, "body-too-large", "Body too large", f"the body exceeds {limit_bytes} bytes"
    )


def unsupported_media_type(detail: str) -> ProblemError:
    return ProblemError(415, "unsupported-media-type", "Unsupported content type", detail)


def conflict(detail: str, retry_after_s: int) -> ProblemError:
    return ProblemError(
        409,
        "request-in-progress",
        "Request in progress",
        detail,
        {"Retry-After": str(retry_after_s)},
    )


def unprocessable(slug: str, title: str, detail: str) -> ProblemError:
    return ProblemError(422, slug, title, detail)


def unavailable(detail: str, retry_after_s: int) -> ProblemError:
    return ProblemError(
        503, "unavailable", "Service unavailable", detail, {"Retry-After": str(retry_after_s)}
    )


def _from_http_exception(exc: web.HTTPException) -> ProblemError:
    """aiohttp's own errors (404, 405) and those of routes other layers add."""
    slug = exc.reason.lower().replace(" ", "-")
    detail = exc.reason
    if exc.text and exc.text != f"{exc.status}: {exc.reason}":
        detail = _message_of(exc.text)
    allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
    return ProblemError(exc.status, slug, exc.reason, detail, allow)


def _message_of(text: str) -> str:
    """The message of a JSON error body ({"error": ...} or {"detail": ...}), else the text."""
    try:
        document = json.loads(text)
    except ValueError:
        return text
    if isinstance(document, dict):
        for field in ("detail", "error", "message"):
            if isinstance(document.get(field), str):
                return str(document[field])
    return text


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer every error as a problem document; never let a traceback reach the client."""
    try:
        return await handler(request)
    except ProblemError as problem:
        return problem.to_response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc).to_response()
    except Exception:  # the last line of defence: a bug must still answer JSON, logged
        log.exception("gateway.unhandled_error", path=request.path, method=request.method)
        return ProblemError(
            500, "internal-error", "Internal error", "the gateway failed; this is a bug"
        ).to_response()
