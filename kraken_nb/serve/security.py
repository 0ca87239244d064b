"""Who may talk to the servers: loopback by default, a bearer key otherwise, Host checks, secrets kept secret.

``BearerAuth`` guards both surfaces with the same key (compared in constant
time); ``HostGuard`` refuses requests whose ``Host`` is not one the server is
reachable as (DNS rebinding; the MCP SDK applies its own equivalent check on
``/mcp``). ``Secret`` holds the API key and ``KRAKEN_WS_TOKEN`` so that no
repr, log line or error can show them.
"""

from __future__ import annotations

import hmac
import ipaddress
import json
from collections.abc import Iterable
from typing import Any, Final

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["TOKEN_ENV", "BearerAuth", "HostGuard", "Secret", "allowed_hosts", "is_loopback", "problem_bytes"]

TOKEN_ENV: Final = "KRAKEN_WS_TOKEN"
"""The environment variable of Kraken's WebSocket token (the capability's binding)."""

_LOOPBACK_NAMES: Final = ("localhost",)


class Secret:
    """A string that never shows itself: ``repr`` and ``str`` print ``***``; ``reveal()`` returns it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    def reveal(self) -> str:
        """The secret itself (for comparisons and upstream use only)."""
        return self._value

    def matches(self, candidate: str) -> bool:
        """Whether ``candidate`` is the secret (constant time)."""
        return hmac.compare_digest(candidate.encode(), self._value.encode())

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


def is_loopback(host: str) -> bool:
    """Whether binding ``host`` keeps the server on this machine."""
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, extra: Iterable[str] = ()) -> list[str]:
    """The names (no port) a ``Host`` header may carry: loopback, the bind address, ``extra``."""
    names = ["127.0.0.1", "localhost", "[::1]"]
    if host not in ("0.0.0.0", "::", ""):
        names.append(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    names.extend(extra)
    return list(dict.fromkeys(names))


def problem_bytes(status: int, title: str, detail: str, **extra: Any) -> bytes:
    """An RFC 9457 problem document."""
    return json.dumps(
        {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    ).encode()


async def _send_problem(
    send: Send,
    status: int,
    title: str,
    detail: str,
    headers: list[tuple[bytes, bytes]] = (),  # type: ignore[assignment]
) -> None:
    body = problem_bytes(status, title, detail)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _host_name(host: str) -> str:
    """The name part of a ``Host`` header (``[::1]:8080`` → ``[::1]``, ``a:1`` → ``a``), lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[: host.index("]") + 1] if "]" in host else host
    return host.split(":", 1)[0]


class BearerAuth:
    """Require ``Authorization: Bearer <key>`` on every HTTP request (401 problem otherwise)."""

    def __init__(self, app: ASGIApp, key: Secret) -> None:
        self.app = app
        self.key = key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scheme, _, token = (_header(scope, b"authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not token or not self.key.matches(token.strip()):
            await _send_problem(
                send,
                401,
                "Unauthorized",
                "this server needs an API key: send 'Authorization: Bearer <key>'",
                [(b"www-authenticate", b'Bearer realm="kraken-nb"')],
            )
            return
        await self.app(scope, receive, send)


class HostGuard:
    """Refuse a request whose ``Host`` header names a host not in ``hosts`` (421 problem).

    A web page on another origin can resolve its own name to 127.0.0.1 (DNS
    rebinding); its requests then carry that name in ``Host`` and are refused.
    """

    def __init__(self, app: ASGIApp, hosts: Iterable[str]) -> None:
        self.app = app
        self.hosts = frozenset(h.lower() for h in hosts)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _host_name(_header(scope, b"host") or "") not in self.hosts:
            await _send_problem(
                send, 421, "Misdirected Request", f"requests must be addressed to {self._shown()}"
            )
            return
        await self.app(scope, receive, send)

    def _shown(self) -> str:
        return ", ".join(sorted(self.hosts))
