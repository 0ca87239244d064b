"""The REST surface: FastAPI routes for the 12 operations, health, and Server-Sent Events.

Each route reads its body itself (size cap, ``application/json`` only, strict
JSON) and hands it to :class:`~kraken_nb.serve.operations.Operations`; the
answer is ``{"result": ...}`` with the messages spliced in as the exact text
Kraken sent. Every error, including unknown paths and unexpected failures, is
an RFC 9457 ``application/problem+json`` document without a traceback.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from pydantic import create_model
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import InvalidParams, ServeError
from kraken_nb.serve.models import (
    CHANNELS,
    OPERATIONS,
    Operation,
    PingResult,
    Problem,
    PublishResult,
    ReceiveResult,
    request_schema,
)
from kraken_nb.serve.operations import Operations
from kraken_nb.serve.security import BearerAuth, HostGuard, Secret, problem_bytes

__all__ = ["build_rest_app", "problem_response"]

log = logging.getLogger(__name__)
_failures = ThrottledLog(log)

_PROBLEM = {"model": Problem, "content": {"application/problem+json": {}}}
_ERRORS: dict[int | str, dict[str, Any]] = {
    status: {**_PROBLEM, "description": text}
    for status, text in (
        (400, "The body is not {channel, params} JSON, or its channel is not this route's"),
        (401, "An API key is required"),
        (404, "Unknown symbol"),
        (409, "Not subscribed (publish first), other parameters, or the subscription cap"),
        (413, "The body is larger than the cap"),
        (415, "The body is not application/json"),
        (421, "The Host header names another server"),
        (422, "Invalid params (the message the Python API's InvalidParams gives) or a per-request cap"),
        (429, "The upstream rate limit, or too many waiting requests or event streams"),
        (502, "Kraken rejected the request"),
        (503, "The upstream connection is down (with its state), or the server is stopping"),
        (504, "Kraken did not answer in time"),
    )
}
_ENVELOPES = {
    name: create_model(f"{name}Response", result=(model, ...))
    for name, model in (("Receive", ReceiveResult), ("Publish", PublishResult), ("Ping", PingResult))
}


def problem_response(status: int, detail: str, **extra: Any) -> Response:
    """An ``application/problem+json`` response (with ``Retry-After`` for a 429 that knows it)."""
    headers = {}
    if "retry_after" in extra:
        headers["Retry-After"] = str(max(1, round(extra["retry_after"])))
    title = HTTPStatus(status).phrase
    return Response(
        problem_bytes(status, title, detail, **extra),
        status_code=status,
        media_type="application/problem+json",
        headers=headers,
    )


def _json(payload: Any) -> Response:
    return Response(orjson.dumps(payload), media_type="application/json")


async def read_json(request: Request, max_bytes: int) -> Any:
    """The request body as JSON, within ``max_bytes``."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json":
        raise ServeError(415, "send the body as JSON, with 'Content-Type: application/json'")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raise ServeError(413, f"the body is larger than {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > max_bytes:
            raise ServeError(413, f"the body is larger than {max_bytes} bytes")
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ServeError(400, f"the body is not valid JSON ({exc})") from None


def _guarded(handler: Callable[[Request], Awaitable[Response]]) -> Callable[[Request], Awaitable[Response]]:
    """Turn every failure of ``handler`` into a problem response; unexpected ones are logged, not shown."""

    async def guarded(request: Request) -> Response:
        try:
            return await handler(request)
        except ServeError as exc:
            return problem_response(exc.status, exc.detail, **exc.extra)
        except InvalidParams as exc:
            return problem_response(422, str(exc))
        except Exception:
            _failures.log(
                logging.ERROR, "unexpected", "unexpected failure serving %s", request.url.path, exc_info=True
            )
            return problem_response(500, "the server failed to answer this request (logged)")

    return guarded


def build_rest_app(
    operations: Operations, *, api_key: Secret | None, hosts: list[str], version: str = ""
) -> ASGIApp:
    """The REST application (wrapped in the Host check and, with a key, the bearer check)."""
    limits = operations.limits
    app = FastAPI(
        title="kraken_nb streams",
        version=version,
        description="Kraken Spot WebSocket API v2 streams over REST: publish subscribes or unsubscribes, "
        "subscribe receives a snapshot and then every update with cursors (read-only).",
        openapi_url="/openapi.json",
        docs_url="/docs",
        redoc_url=None,
    )
    handlers = {operation.path: _guarded(_route(operations, operation)) for operation in OPERATIONS}
    for operation in OPERATIONS:
        app.add_api_route(
            operation.path,
            handlers[operation.path],
            methods=["POST"],
            operation_id=operation.operation_id,
            summary=operation.summary,
            description=operation.description,
            tags=[operation.channel],
            responses={200: {"model": _envelope(operation), "description": "{result}"}, **_ERRORS},
            openapi_extra={
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": request_schema(operation, limits)}},
                }
            },
        )

    async def health(request: Request) -> Response:
        return _json(operations.health())

    app.add_api_route("/v1/health", _guarded(health), methods=["GET"], operation_id="health", tags=["server"])

    async def events(request: Request) -> Response:
        channel = request.path_params["channel"]
        if channel not in CHANNELS:
            raise ServeError(404, f"no channel {channel!r}; channels: {', '.join(CHANNELS)}")
        read = operations.read_request(channel, _event_params(request))
        keys = operations.open_events(read)

        async def stream() -> AsyncIterator[ServerSentEvent]:
            async for cursor, event, data in operations.events(read, keys):
                yield ServerSentEvent(data=data, id=str(cursor), event=event)

        return EventSourceResponse(stream(), ping=15, headers={"Cache-Control": "no-store"})

    app.add_api_route(
        "/v1/streams/{channel}/events",
        _guarded(events),
        methods=["GET"],
        operation_id="events",
        tags=["server"],
        summary="Server-Sent Events",
        description="The stream as Server-Sent Events: a snapshot, then every message, each with its cursor "
        "as the event id (resume with Last-Event-ID or ?since=). An event named gap means messages were "
        "missed; a fresh snapshot follows.",
        responses={200: {"content": {"text/event-stream": {}}, "description": "events"}, **_ERRORS},
        openapi_extra={"parameters": _EVENT_PARAMETERS},
    )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 404:
            routes = "POST /v1/streams/{" + "|".join(CHANNELS) + "}/{subscribe|publish}"
            return problem_response(
                404, f"no route {request.method} {request.url.path}; the routes are {routes}"
            )
        return problem_response(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    app.add_exception_handler(StarletteHTTPException, http_error)
    guarded: ASGIApp = _Direct(app, handlers)
    if api_key is not None:
        guarded = BearerAuth(guarded, api_key)
    return HostGuard(guarded, hosts)


class _Direct:
    """Hand POSTs to the 12 operation paths straight to their handlers; the rest to FastAPI.

    FastAPI documents those routes (OpenAPI, ``/docs``) with the very same handlers, but its
    per-request machinery costs more than the operation itself, and a server with fifty
    long-pollers answers hundreds of them a second.
    """

    def __init__(self, app: ASGIApp, handlers: dict[str, Callable[[Request], Awaitable[Response]]]) -> None:
        self.app = app
        self.handlers = handlers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        handler = self.handlers.get(scope.get("path", "")) if scope["type"] == "http" else None
        if handler is None or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        response = await handler(Request(scope, receive))
        await response(scope, receive, send)


def _route(operations: Operations, operation: Operation) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        body = await read_json(request, operations.limits.max_body_bytes)
        return _json({"result": await operations.run(operation, body)})

    endpoint.__name__ = operation.operation_id.replace("-", "_")
    return endpoint


def _envelope(operation: Operation) -> Any:
    if operation.reads:
        return _ENVELOPES["Receive"]
    return _ENVELOPES["Ping" if operation.channel == "ping" else "Publish"]


def _event_params(request: Request) -> dict[str, Any]:
    query = request.query_params
    unknown = sorted(set(query) - {"symbol", "interval", "since"})
    if unknown:
        raise InvalidParams("parameter", unknown[0], ("symbol", "interval", "since"))
    params: dict[str, Any] = {}
    if symbols := query.getlist("symbol"):
        params["symbol"] = [s for value in symbols for s in value.split(",") if s]
    for name, text in (
        ("interval", query.get("interval")),
        ("since", query.get("since") or request.headers.get("last-event-id")),
    ):
        if text is not None:
            if not text.isdigit():
                raise InvalidParams(name, text, "a non-negative integer")
            params[name] = int(text)
    return params


_EVENT_PARAMETERS = [
    {"name": "channel", "in": "path", "required": True, "schema": {"enum": list(CHANNELS)}},
    {
        "name": "symbol",
        "in": "query",
        "schema": {"type": "array", "items": {"type": "string"}},
        "explode": True,
    },
    {"name": "interval", "in": "query", "schema": {"type": "integer"}},
    {
        "name": "since",
        "in": "query",
        "schema": {"type": "integer"},
        "description": "or the Last-Event-ID header",
    },
]
