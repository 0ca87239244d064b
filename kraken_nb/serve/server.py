"""Running both surfaces: two uvicorn servers on one asyncio loop in a background thread.

``ServeHandle.start(client, ...)`` binds both sockets in the calling thread
(so a port in use is a clear ``OSError`` right there), adds the journal to the
client, and runs the REST and MCP applications on a loop of their own, never
the notebook's and never the client's network thread. ``stop()`` wakes every
long poll and event stream, lets uvicorn finish the requests in flight, and
joins the thread; closing the client stops it too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Final

import uvicorn

from kraken_nb.core.journal import INSTRUMENT, Journal
from kraken_nb.core.params import Subscription
from kraken_nb.errors import ClientClosed, InvalidParams
from kraken_nb.serve import security
from kraken_nb.serve.limits import Limits
from kraken_nb.serve.mcp import build_mcp_app
from kraken_nb.serve.operations import Operations
from kraken_nb.serve.rest import build_rest_app
from kraken_nb.serve.security import TOKEN_ENV, Secret, is_loopback
from kraken_nb.serve.upstream import Upstream
from kraken_nb.serve.wakeup import Notifier

if TYPE_CHECKING:
    from kraken_nb.client import KrakenClient

__all__ = ["ServeHandle"]

log = logging.getLogger(__name__)

_START_TIMEOUT: Final = 15.0
INSTRUMENTS: Final = Subscription("instrument")
_GRACE_S: Final = 2
_KEEP_ALIVE_S: Final = 30
"""How long an idle HTTP connection stays open. Longer than client pools keep one (httpx: 5 s,
uvicorn's default too): with equal times the server may close a connection just as the client
sends on it, and the client sees a bare ``ReadError``."""


class ServeHandle:
    """The REST and MCP servers of one client; ``urls`` says where, ``stop()`` ends them."""

    def __init__(
        self,
        client: KrakenClient,
        *,
        rest_port: int = 8080,
        mcp_port: int = 9090,
        host: str = "127.0.0.1",
        api_key: str | Secret | None = None,
        allowed_hosts: Iterable[str] = (),
        limits: Limits | None = None,
        token: Secret | None = None,
    ) -> None:
        upstream = Upstream(client)
        if upstream.closed:
            raise ClientClosed("the client is closed")
        key = Secret(api_key) if isinstance(api_key, str) else api_key
        if key is None and not is_loopback(host):
            raise InvalidParams(
                "api_key", None, f"an API key to bind {host}: beyond loopback every request must carry it"
            )
        self.host = host
        self.limits = limits or Limits()
        self.token = token if token is not None else token_from_env(os.environ)
        """``KRAKEN_WS_TOKEN``, held for upstream use only (public channels do not send it)."""
        self._key = key
        self._hosts = security.allowed_hosts(host, allowed_hosts)
        self._notifier = Notifier()
        self.journal = Journal(
            retain=self.limits.journal_retain, start=time.time_ns() // 1000, wake=self._notifier.wake
        )
        self._upstream = upstream
        self._executor = ThreadPoolExecutor(max_workers=4, thread_name_prefix="kraken-nb-serve-upstream")
        self.operations = Operations(
            self._upstream, self.journal, self.limits, self._notifier, self._executor
        )
        self._sockets = _bind_both(host, rest_port, mcp_port)
        self._servers: list[uvicorn.Server] = []
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ready = threading.Event()
        self._failure: BaseException | None = None
        self._stopped = False
        self._remove_tap = self._upstream.add_tap(self.journal)
        self._thread = threading.Thread(target=self._run, name="kraken-nb-serve", daemon=True)
        rest, mcp = (s.getsockname()[1] for s in self._sockets)
        shown = f"[{host}]" if ":" in host else host
        self.urls: dict[str, str] = {
            "rest": f"http://{shown}:{rest}",
            "docs": f"http://{shown}:{rest}/docs",
            "mcp": f"http://{shown}:{mcp}/mcp",
        }
        """Where the surfaces listen: ``rest`` (base URL), ``docs`` (OpenAPI UI), ``mcp`` (the endpoint)."""

    @classmethod
    def start(cls, client: KrakenClient, **options: Any) -> ServeHandle:
        """Start serving ``client``; return once both servers accept connections."""
        handle = cls(client, **options)
        try:
            handle._thread.start()
            if not handle._ready.wait(_START_TIMEOUT):
                raise TimeoutError(f"the servers did not start within {_START_TIMEOUT:g} s")
            if handle._failure is not None:
                raise RuntimeError(f"the servers failed to start: {handle._failure!r}") from handle._failure
        except BaseException:
            handle.stop()
            raise
        handle._subscribe_instruments()
        log.info("serving REST at %s and MCP at %s", handle.urls["rest"], handle.urls["mcp"])
        return handle

    @property
    def running(self) -> bool:
        """Whether the servers are up."""
        return self._thread.is_alive() and not self._stopped

    def stop(self, timeout: float = 10.0) -> None:
        """Stop both servers and their thread (idempotent); requests in flight get a short grace."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._shutdown)
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                for server in self._servers:
                    server.force_exit = True
                self._thread.join(timeout)
        self._remove_tap()
        self._executor.shutdown(wait=True, cancel_futures=True)  # running calls end within upstream_timeout
        for sock in self._sockets:
            sock.close()
        log.info("stopped serving %s", self.urls["rest"])

    def __enter__(self) -> ServeHandle:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<ServeHandle rest={self.urls['rest']} mcp={self.urls['mcp']} {state}>"

    # -- the serving thread ---------------------------------------------------------------

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._serve())
        except BaseException as exc:  # reported to start(); uvicorn exits with SystemExit on errors
            self._failure = exc
        finally:
            self._ready.set()
            with contextlib.suppress(Exception):
                # e.g. sse-starlette's shutdown watcher: end what is left before the loop closes
                leftover = asyncio.all_tasks(loop)
                for task in leftover:
                    task.cancel()
                loop.run_until_complete(asyncio.gather(*leftover, return_exceptions=True))
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    async def _serve(self) -> None:
        from kraken_nb import __version__

        self._notifier.bind(asyncio.get_running_loop())
        rest_app = build_rest_app(self.operations, api_key=self._key, hosts=self._hosts, version=__version__)
        _, mcp_app = build_mcp_app(
            self.operations, api_key=self._key, hosts=self._hosts, host=self.host, version=__version__
        )
        self._servers = [
            uvicorn.Server(_config(rest_app, lifespan="off")),
            uvicorn.Server(_config(mcp_app, lifespan="on")),
        ]
        tasks = [
            asyncio.create_task(server.serve(sockets=[sock]), name=f"kraken-nb-serve-{name}")
            for server, sock, name in zip(self._servers, self._sockets, ("rest", "mcp"), strict=True)
        ]
        while not all(server.started for server in self._servers):
            if any(task.done() for task in tasks) or self._stopped:
                break
            await asyncio.sleep(0.01)
        if all(server.started for server in self._servers):
            self._ready.set()
        else:
            self._shutdown()
        for task, result in zip(tasks, await asyncio.gather(*tasks, return_exceptions=True), strict=True):
            if isinstance(result, BaseException) and not isinstance(result, asyncio.CancelledError):
                if not self._ready.is_set():
                    raise result
                log.error("%s ended with %r", task.get_name(), result)

    def _shutdown(self) -> None:
        self._notifier.close()
        for server in self._servers:
            server.should_exit = True

    def _subscribe_instruments(self) -> None:
        """Subscribe the instrument channel in the background: it tells known symbols from unknown ones."""

        def subscribe() -> None:
            try:
                self._upstream.subscribe(INSTRUMENTS, self.limits.upstream_timeout)
            except Exception as exc:  # the server works without it: Kraken then judges symbols itself
                log.warning("could not subscribe the instrument channel: %s", exc)

        if INSTRUMENT not in self._upstream.kept():
            self._executor.submit(subscribe)


def _config(app: Any, lifespan: str) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan=lifespan,  # type: ignore[arg-type]
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=_GRACE_S,
        timeout_keep_alive=_KEEP_ALIVE_S,
        server_header=False,
    )


def _bind_both(host: str, *ports: int) -> list[socket.socket]:
    sockets: list[socket.socket] = []
    try:
        for port in ports:
            sockets.append(_bind(host, port))
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets


def _bind(host: str, port: int) -> socket.socket:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise InvalidParams("port", port, "an integer from 0 to 65535 (0 picks a free one)")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host.strip("[]"), port), family=family, backlog=128)
    # asyncio turns Nagle off only for sockets made with proto=IPPROTO_TCP, which these are
    # not; without this every response waits ~40 ms for the peer's delayed ACK. Accepted
    # connections inherit the option.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def token_from_env(environ: Any) -> Secret | None:
    """``KRAKEN_WS_TOKEN`` from ``environ`` as a :class:`Secret` (None when unset or empty)."""
    value = environ.get(TOKEN_ENV)
    return Secret(value) if value else None
