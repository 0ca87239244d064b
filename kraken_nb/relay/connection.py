"""One NATS connection for the relay or a client, and plain words for what goes wrong with it.

:class:`NatsLink` wraps ``nats-py``: it connects within a deadline (failing
at once on a refused login), reconnects for ever after that, remembers the
server's permission violations (which ``nats-py`` reports only to a callback,
while the request itself just times out) and turns failures into
:class:`~kraken_nb.errors.RelayError` messages naming the server (redacted),
the subject and what to do. It must be used on one event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections import deque
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar
from urllib.parse import urlsplit

from kraken_nb.core.redaction import redact, redact_url
from kraken_nb.core.throttle import ThrottledLog
from kraken_nb.errors import InvalidParams, RelayError

__all__ = ["NATS_EXTRA_HINT", "NatsLink", "check_nats_url", "nats_servers", "require_nats", "shown_nats_url"]

log = logging.getLogger(__name__)

T = TypeVar("T")

NATS_EXTRA_HINT: Final = "pip install 'kraken_nb[nats]' (or pip install nats-py)"
_SCHEMES: Final = ("nats", "tls", "ws", "wss")
_PERMISSION = re.compile(
    r"permissions violation for (publish|subscription) to \"?([^\"']+)\"?", re.IGNORECASE
)


def require_nats() -> Any:
    """Import ``nats`` (the ``nats-py`` package) or raise ``RelayError`` naming the extra to install."""
    try:
        import nats
    except ImportError:
        raise RelayError(f"the NATS relay needs the nats extra: {NATS_EXTRA_HINT}") from None
    return nats


def nats_servers(url: str) -> list[str]:
    """The servers ``url`` names: one URL, or a comma-separated seed list of a cluster's nodes.

    Each must be ``nats://host:port`` (or tls://, ws://, wss://); the client
    connects to any of them and fails over to the others (and to the nodes
    the cluster announces).
    """
    servers = [part.strip() for part in str(url).split(",") if part.strip()]
    if not servers:
        raise InvalidParams("url", redact_url(str(url)), "a nats:// URL such as nats://127.0.0.1:4222")
    for server in servers:
        check_nats_url(server)
    return servers


def shown_nats_url(url: str) -> str:
    """``url`` (one URL or a seed list) with every server's credentials redacted."""
    return ",".join(redact_url(server) for server in str(url).split(","))


def check_nats_url(url: str) -> None:
    """Refuse a URL that is not ``nats://host:port`` (or tls://, ws://, wss://) before connecting.

    A comma-separated seed list is checked server by server.
    """
    if "," in str(url):
        nats_servers(url)
        return
    try:
        parts = urlsplit(url)
        port = parts.port
    except (ValueError, TypeError) as exc:
        raise InvalidParams(
            "url", redact_url(str(url)), f"a nats:// URL such as nats://127.0.0.1:4222 ({exc})"
        ) from None
    if parts.scheme not in _SCHEMES or not parts.hostname:
        raise InvalidParams("url", redact_url(str(url)), "a nats:// URL such as nats://127.0.0.1:4222")
    del port


class NatsLink:
    """A NATS connection (``nc``) and its JetStream context (``js``), with failures explained.

    ``on_change(connected)`` is called on the loop when the connection drops
    and comes back.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        api_timeout: float = 5.0,
        reconnect_wait: float = 0.5,
        on_change: Callable[[bool], None] | None = None,
    ) -> None:
        self.servers = nats_servers(url)
        self.url = url
        self.shown = shown_nats_url(url)
        self.name = name
        self.api_timeout = api_timeout
        self.reconnect_wait = reconnect_wait
        self.nc: Any = None
        self.js: Any = None
        self.disconnects = 0
        self.reconnects = 0
        self.last_error: str | None = None
        self.permission_errors: deque[str] = deque(maxlen=8)
        self._violation_waiters: set[asyncio.Future[str]] = set()
        self._on_change = on_change
        self._connected: asyncio.Event | None = None
        self._refused: asyncio.Future[str] | None = None
        self._throttled = ThrottledLog(log)

    @property
    def connected(self) -> bool:
        """Whether the connection is up now."""
        return self.nc is not None and self.nc.is_connected

    async def open(self, timeout: float) -> None:
        """Connect within ``timeout`` seconds or raise ``RelayError`` saying why."""
        nats = require_nats()
        loop = asyncio.get_running_loop()
        self._connected = asyncio.Event()
        self._refused = loop.create_future()
        connecting = asyncio.ensure_future(
            nats.connect(
                servers=self.servers,
                name=self.name,
                connect_timeout=min(timeout, 2.0),
                reconnect_time_wait=self.reconnect_wait,
                max_reconnect_attempts=-1,
                error_cb=self._error,
                disconnected_cb=self._disconnected,
                reconnected_cb=self._reconnected,
            )
        )
        done, _ = await asyncio.wait(
            {connecting, self._refused}, timeout=timeout, return_when="FIRST_COMPLETED"
        )
        if connecting not in done:
            connecting.cancel()
            with contextlib.suppress(BaseException):
                await connecting
            if self._refused in done:
                raise RelayError(f"{self.shown} refused the connection: {self._refused.result()}")
            detail = self.last_error or "no answer"
            raise RelayError(f"cannot connect to {self.shown} within {timeout:g} s: {detail}")
        try:
            self.nc = connecting.result()
        except Exception as exc:
            raise RelayError(f"cannot connect to {self.shown}: {self._text(exc)}") from None
        self.js = self.nc.jetstream(timeout=self.api_timeout)
        self._connected.set()

    async def wait_connected(self) -> None:
        """Return once the connection is up (at once if it is)."""
        assert self._connected is not None
        await self._connected.wait()

    async def close(self) -> None:
        """Drain nothing, close the connection (bounded)."""
        nc, self.nc = self.nc, None
        if nc is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(nc.close(), 5.0)

    async def guarded(self, coroutine: Coroutine[Any, Any, T], action: str) -> T:
        """Await ``coroutine``; raise ``RelayError`` at once if the server reports a permission violation.

        ``nats-py`` reports a violation only to its error callback while the
        request itself waits for its timeout; this turns it into an error now.
        """
        waiter: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._violation_waiters.add(waiter)
        task = asyncio.ensure_future(coroutine)
        try:
            await asyncio.wait({task, waiter}, return_when=asyncio.FIRST_COMPLETED)
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                raise self.explain(PermissionError(waiter.result()), action)
            return task.result()
        finally:
            self._violation_waiters.discard(waiter)
            waiter.cancel()

    def explain(self, exc: BaseException, action: str) -> RelayError:
        """A ``RelayError`` for ``exc`` raised while doing ``action`` (e.g. "reading stream KRAKEN")."""
        import nats.errors
        import nats.js.errors

        if self.permission_errors:
            return RelayError(
                f"{self.shown}: permission denied while {action}: {self.permission_errors[-1]} "
                "(grant the user these subjects in the nats-server authorization block)"
            )
        if isinstance(exc, (nats.errors.NoRespondersError, nats.js.errors.ServiceUnavailableError)):
            return RelayError(f"{self.shown} has no JetStream (start nats-server with -js) while {action}")
        if isinstance(exc, (asyncio.TimeoutError, nats.errors.TimeoutError)):
            return RelayError(f"{self.shown}: no answer within {self.api_timeout:g} s while {action}")
        return RelayError(f"{self.shown}: {action} failed: {self._text(exc)}")

    def _text(self, exc: BaseException) -> str:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
        for server in self.servers:
            text = redact(text, server)
        return text

    # -- nats-py callbacks ------------------------------------------------------

    async def _error(self, exc: Exception) -> None:
        text = self._text(exc)
        self.last_error = text
        match = _PERMISSION.search(str(exc))
        if match:
            self.permission_errors.append(f"{match[1]} to {match[2]}")
            for waiter in self._violation_waiters:
                if not waiter.done():
                    waiter.set_result(text)
            self._throttled.warning("permission", "%s: %s", self.shown, text)
        elif "authorization violation" in str(exc).lower() or "authentication" in str(exc).lower():
            if self._refused is not None and not self._refused.done():
                self._refused.set_result(text)
        else:
            self._throttled.log(logging.INFO, type(exc).__name__, "%s: %s", self.shown, text)

    async def _disconnected(self) -> None:
        if self.nc is None:
            return  # still connecting, or closing
        self.disconnects += 1
        if self._connected is not None:
            self._connected.clear()
        log.info("%s: disconnected; reconnecting", self.shown)
        if self._on_change is not None:
            self._on_change(False)

    async def _reconnected(self) -> None:
        self.reconnects += 1
        if self._connected is not None:
            self._connected.set()
        log.info("%s: reconnected", self.shown)
        if self._on_change is not None:
            self._on_change(True)
