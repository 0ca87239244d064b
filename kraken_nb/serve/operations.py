"""The 12 operations, once, for both surfaces: validation, caps, and the 4xx/5xx decisions.

REST and MCP hand every request here as the body ``{"channel", "params"}``
and get back the ``result`` object (messages as exact wire text, ready for
``orjson``) or a :class:`~kraken_nb.errors.ServeError` carrying the HTTP
status and a clear detail:

- 400 the body is not ``{"channel": <the path's channel>, "params": {...}}``;
  422 invalid params (the very message :class:`~kraken_nb.errors.InvalidParams`
  gives the Python API, from the same validation) or a per-request cap;
- 404 a symbol Kraken does not list; 409 reading a stream the client is not
  subscribed to (``publish`` first), or subscribing with other parameters than
  the kept subscription, or past the subscription cap; 429 the upstream rate
  limit or the waiter/SSE caps;
- 502 Kraken rejected the request; 503 the upstream connection is down (with
  its state) or the server is stopping; 504 Kraken did not answer in time.

Reads never subscribe and never reach Kraken: they page the
:class:`~kraken_nb.core.journal.Journal`, under the client's lock, briefly.
Publishes that would change nothing (a repeated subscribe) are answered with
the last acks without an upstream request.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Executor
from dataclasses import asdict, dataclass
from typing import Any, Final, TypeVar

import orjson

from kraken_nb.core.journal import INSTRUMENT, PING, Journal, StreamKey, stream_key
from kraken_nb.core.params import validate_subscription
from kraken_nb.errors import ClientClosed, InvalidParams, RequestTimeout, ServeError, SubscriptionRejected
from kraken_nb.serve.limits import Limits, RateLimiter
from kraken_nb.serve.models import Operation
from kraken_nb.serve.upstream import Upstream
from kraken_nb.serve.wakeup import Notifier

__all__ = ["Operations", "Read"]

_PAGING: Final = ("since", "limit", "wait")
_SSE_IDLE_S: Final = 15.0
_UNKNOWN_PAIR_HINTS: Final = ("not supported", "unknown", "not found")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Read:
    """A validated receive: the channel, its symbols, and how to page."""

    channel: str
    symbols: tuple[str, ...]
    interval: int | None
    since: int | None
    limit: int
    wait: float


def parse_body(channel: str, body: Any) -> dict[str, Any]:
    """The ``params`` of a request body ``{"channel": channel, "params": {...}}``."""
    shape = f'{{"channel": "{channel}", "params": {{...}}}}'
    if not isinstance(body, dict):
        raise ServeError(400, f"the body must be a JSON object: {shape}")
    extra = sorted(set(body) - {"channel", "params"})
    if extra:
        raise ServeError(400, f"unknown body member {extra[0]!r}: the body is {shape}")
    if "channel" not in body:
        raise ServeError(400, f"the body needs its channel: {shape}")
    if body["channel"] != channel:
        raise ServeError(
            400, f"the body's channel {body['channel']!r} does not match this operation's {channel!r}"
        )
    params = body.get("params")
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise ServeError(422, str(InvalidParams("params", params, "an object of channel parameters")))
    return params


class Operations:
    """Receive, publish, ping, health and the SSE stream over one client and its journal."""

    def __init__(
        self,
        upstream: Upstream,
        journal: Journal,
        limits: Limits,
        notifier: Notifier,
        executor: Executor | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.upstream = upstream
        self.journal = journal
        self.limits = limits
        self.notifier = notifier
        self.counters: Counter[str] = Counter()
        self.polling = 0
        self.sse_clients = 0
        self._executor = executor
        self._clock = clock
        self._rate = RateLimiter(limits.upstream_rate, limits.upstream_burst, clock)

    # -- entry point -----------------------------------------------------------------

    async def run(self, operation: Operation, body: Any) -> dict[str, Any]:
        """Run one of the 12 operations on a request body; return its ``result``."""
        self.counters["requests"] += 1
        try:
            params = parse_body(operation.channel, body)
            if operation.reads:
                return await self.receive(self.read_request(operation.channel, params))
            if operation.channel == "ping":
                return await self.ping(params)
            return await self.publish(operation.channel, params)
        except ServeError as exc:
            self.counters[f"status_{exc.status}"] += 1
            raise
        except InvalidParams as exc:
            self.counters["status_422"] += 1
            raise ServeError(422, str(exc)) from None

    # -- receive ------------------------------------------------------------------------

    def read_request(self, channel: str, params: dict[str, Any]) -> Read:
        """Validate the params of a receive (``InvalidParams`` for bad ones)."""
        params = dict(params)
        since = _cursor(params.pop("since", None))
        limit = _bounded_int("limit", params.pop("limit", self.limits.default_limit), self.limits.max_limit)
        wait = _seconds(params.pop("wait", 0), self.limits.max_wait)
        allowed = ("symbol", "interval") if channel == "ohlc" else ("symbol",)
        if channel in ("instrument", "ping"):
            allowed = ()
        for name in params:
            if name not in allowed:
                raise InvalidParams("parameter", name, (*allowed, *_PAGING))
        if channel == "ping":
            return Read(channel, (), None, since, limit, wait)
        interval = params.get("interval")
        extra = {"interval": interval} if channel == "ohlc" else {}
        subscription = validate_subscription(channel, params.get("symbol"), **extra)
        self._check_count(subscription.symbols)
        return Read(channel, subscription.symbols, interval, since, limit, wait)

    async def receive(self, read: Read) -> dict[str, Any]:
        """A snapshot (no ``since``) or the page of messages after ``since``."""
        keys = self._read_keys(read)
        if read.channel == "ping" and read.since is None:
            with self.upstream.locked():
                pong, cursor = self.journal.last_pong, self.journal.cursor
            return _result("ping", cursor, False, [pong] if pong is not None else [])
        if read.since is None:
            return await self._snapshot(read.channel, keys, read.wait)
        return await self._page(read.channel, keys, read.since, read.limit, read.wait)

    def _read_keys(self, read: Read) -> list[StreamKey]:
        """The journal streams of a read; 404 for unknown symbols, 409 for streams not subscribed."""
        if read.channel == "ping":
            return [PING]
        with self.upstream.locked():
            self._check_known(read.symbols)
            kept = self.upstream.kept()
        if read.channel == "instrument":
            keys = [INSTRUMENT] if INSTRUMENT in kept else []
            if not keys:
                raise self._not_subscribed("instrument", "")
            return keys
        keys = []
        for symbol in read.symbols:
            if read.channel == "ohlc" and read.interval is None:
                found = sorted(
                    (k for k in kept if k[0] == "ohlc" and k[1] == symbol), key=lambda k: k[2] or 0
                )
            else:
                key = stream_key(read.channel, symbol, read.interval if read.channel == "ohlc" else None)
                found = [key] if key in kept else []
            if not found:
                raise self._not_subscribed(read.channel, symbol, read.interval)
            keys.extend(found)
        return keys

    async def _snapshot(
        self, channel: str, keys: list[StreamKey], wait: float, counted: bool = True
    ) -> dict[str, Any]:
        deadline = self._clock() + wait
        with self._polling(wait if counted else 0):
            while True:
                with self.upstream.locked():
                    live = self.upstream.live
                    snapshot = self.journal.snapshot(
                        channel, keys, self.upstream.books(), (self.upstream.pairs(), self.upstream.assets())
                    )
                remaining = deadline - self._clock()
                if (live and not snapshot.missing) or remaining <= 0:
                    break
                await self._wait(remaining)
        if not live:
            raise self._down("no current snapshot")
        if channel == "book" and snapshot.missing:
            raise ServeError(
                503,
                f"the {', '.join(snapshot.missing)} book is not valid yet (a fresh snapshot is on its way "
                "after a resync or reconnect); retry, or pass params.wait",
                state=self.upstream.state,
            )
        return _result(channel, snapshot.cursor, False, [snapshot.message()])

    async def _page(
        self, channel: str, keys: list[StreamKey], since: int, limit: int, wait: float
    ) -> dict[str, Any]:
        deadline = self._clock() + wait
        with self._polling(wait):
            while True:
                with self.upstream.locked():
                    page = self.journal.read(keys, since, limit)
                    live = self.upstream.live
                remaining = deadline - self._clock()
                if page.entries or page.gap or remaining <= 0:
                    break
                await self._wait(remaining)
        if not page.entries and not page.gap and not live:
            raise self._down(f"nothing after cursor {since} yet; retry with the same cursor", cursor=since)
        return _result(channel, page.cursor, page.gap, page.messages)

    # -- publish ----------------------------------------------------------------------------

    async def publish(self, channel: str, params: dict[str, Any]) -> dict[str, Any]:
        """Subscribe or unsubscribe (``params.method``); answered from the last acks when nothing changes."""
        params = dict(params)
        method = params.pop("method", "subscribe")
        if method not in ("subscribe", "unsubscribe"):
            raise InvalidParams("method", method, ("subscribe", "unsubscribe"))
        subscription = validate_subscription(channel, params.pop("symbol", None), **params)
        self._check_count(subscription.symbols)
        interval = subscription.params.get("interval", 1)
        keys = [stream_key(channel, s, interval) for s in subscription.symbols or ("",)]
        with self.upstream.locked():
            self._check_known(subscription.symbols)
            kept = self.upstream.kept_params()
        if method == "subscribe":
            for key in keys:
                if key in kept and kept[key] != dict(subscription.params):
                    raise ServeError(
                        409,
                        f"{f'{channel} {key[1]}'.strip()} is subscribed with {kept[key]}, "
                        f"not {dict(subscription.params)}: unsubscribe first",
                    )
            todo = [key for key in keys if key not in kept]
            total = len(kept) + len(todo)
            if total > self.limits.max_subscriptions:
                raise ServeError(
                    409,
                    f"that would make {total} subscriptions; this server keeps at most "
                    f"{self.limits.max_subscriptions}: unsubscribe some first",
                )
        else:
            todo = [key for key in keys if key in kept]
        if todo:
            request = subscription.with_symbols(key[1] for key in todo if key[1])
            call = self.upstream.subscribe if method == "subscribe" else self.upstream.unsubscribe
            await self._upstream_call(f"{method} {channel}", call, request, self.limits.upstream_timeout)
        with self.upstream.locked():
            acks = [ack for key in keys if (ack := self.journal.ack(method, key)) is not None]
        return {
            "method": method,
            "channel": channel,
            "acks": [orjson.Fragment(ack) for ack in acks],
            "sent": [key[1] or channel for key in todo],
        }

    async def ping(self, params: dict[str, Any]) -> dict[str, Any]:
        """Ping Kraken; the pong and the measured round trip."""
        if params:
            raise InvalidParams("parameter", next(iter(params)), "none: a ping takes no parameters")
        seconds = await self._upstream_call("ping", self.upstream.ping, self.limits.upstream_timeout)
        with self.upstream.locked():
            pong = self.journal.last_pong
        return {
            "pong": orjson.Fragment(pong) if pong is not None else None,
            "round_trip_ms": round(seconds * 1000, 3),
        }

    async def _upstream_call(self, what: str, call: Callable[..., T], *args: Any) -> T:
        """Run a blocking client request on a worker thread, after the state and rate checks."""
        if not self.upstream.live:
            raise self._down(f"cannot {what} now")
        retry = self._rate.take()
        if retry:
            raise ServeError(
                429,
                f"upstream requests are limited to {self.limits.upstream_rate:g}/s (bursts of "
                f"{self.limits.upstream_burst}) to stay within Kraken's limits; retry in {retry:.1f} s",
                retry_after=round(retry, 3),
            )
        self.counters["upstream_requests"] += 1
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._executor, call, *args)
        except InvalidParams as exc:  # the client refused: e.g. already subscribed with other params
            raise ServeError(409, str(exc)) from None
        except SubscriptionRejected as exc:
            unknown = all(any(h in r.lower() for h in _UNKNOWN_PAIR_HINTS) for r in exc.rejections.values())
            raise ServeError(
                404 if unknown else 502, f"Kraken rejected the {what}: {exc}", rejections=exc.rejections
            ) from None
        except RequestTimeout:
            raise ServeError(
                504,
                f"Kraken did not answer the {what} within {self.limits.upstream_timeout:g} s",
                state=self.upstream.state,
            ) from None
        except ClientClosed:
            raise ServeError(503, "the client is closed", state="closed") from None

    # -- health -------------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """Connection state, subscriptions, the client's, journal's and server's counters."""
        with self.upstream.locked():
            journal = self.journal.stats()
        return {
            "state": self.upstream.state,
            "system_status": self.upstream.system_status,
            "subscriptions": self.upstream.subscriptions(),
            "client": self.upstream.stats(),
            "journal": journal,
            "serve": {
                **self.counters,
                "polling": self.polling,
                "sse_clients": self.sse_clients,
                "limits": asdict(self.limits),
            },
        }

    # -- server-sent events ---------------------------------------------------------------------

    def open_events(self, read: Read) -> list[StreamKey]:
        """Check an SSE request before the stream starts (404/409/429 as HTTP errors)."""
        keys = self._read_keys(read)
        if self.sse_clients >= self.limits.max_sse_clients:
            raise ServeError(
                429, f"too many event streams open (at most {self.limits.max_sse_clients}); retry later"
            )
        return keys

    async def events(self, read: Read, keys: list[StreamKey]) -> AsyncIterator[tuple[int, str, str]]:
        """``(cursor, event, data)`` for each message after ``read.since`` (a snapshot first without one)."""
        self.sse_clients += 1
        try:
            with self.notifier.waiting():
                cursor = read.since
                while not self.notifier.closed:
                    if cursor is None:
                        if read.channel == "ping":
                            with self.upstream.locked():
                                cursor = self.journal.cursor
                            continue
                        try:
                            snapshot = await self._snapshot(read.channel, keys, _SSE_IDLE_S, counted=False)
                        except ServeError:
                            continue  # down or resyncing: keep waiting for a valid snapshot
                        cursor = snapshot["cursor"]
                        yield cursor, "message", _text(snapshot["messages"][0])
                        continue
                    with self.upstream.locked():
                        page = self.journal.read(keys, cursor, self.limits.max_limit)
                    if page.gap:
                        yield (
                            page.cursor,
                            "gap",
                            orjson.dumps({"channel": read.channel, "after": cursor}).decode(),
                        )
                        cursor = None
                        continue
                    for entry_cursor, text in page.entries:
                        yield entry_cursor, "message", text if isinstance(text, str) else text.decode()
                    cursor = page.cursor
                    if not page.entries:
                        await self.notifier.wait(_SSE_IDLE_S)
        finally:
            self.sse_clients -= 1

    # -- helpers ---------------------------------------------------------------------------------

    def _check_count(self, symbols: tuple[str, ...]) -> None:
        if len(symbols) > self.limits.max_symbols:
            raise InvalidParams(
                "symbol", f"{len(symbols)} symbols", f"at most {self.limits.max_symbols} per request"
            )

    def _check_known(self, symbols: tuple[str, ...]) -> None:
        """404 for a symbol the instrument channel does not list (hold the lock)."""
        pairs = self.upstream.pairs()
        if not pairs:
            return  # no reference data yet: Kraken will judge
        for symbol in symbols:
            if symbol not in pairs:
                raise ServeError(404, f"unknown symbol {symbol!r}: Kraken lists no such pair")

    def _not_subscribed(self, channel: str, symbol: str, interval: int | None = None) -> ServeError:
        params: dict[str, Any] = {} if channel == "instrument" else {"symbol": [symbol]}
        if interval is not None:
            params["interval"] = interval
        body = orjson.dumps({"channel": channel, "params": params}).decode()
        what = f"{channel} {symbol}".strip() + (f" (interval {interval})" if interval is not None else "")
        return ServeError(
            409,
            f"not subscribed to {what}: reading never subscribes; publish first (POST "
            f"/v1/streams/{channel}/publish {body}, or the subscribe-unsubscribe-{channel}-channel tool)",
        )

    def _down(self, what: str, **extra: Any) -> ServeError:
        state = self.upstream.state
        return ServeError(503, f"the upstream connection is {state}: {what}", state=state, **extra)

    def _polling(self, wait: float) -> _Polling:
        return _Polling(self, wait)

    async def _wait(self, remaining: float) -> None:
        await self.notifier.wait(remaining)
        if self.notifier.closed:
            raise ServeError(503, "the server is shutting down", state="closing")


class _Polling:
    """A long-poll's place among the waiters: capped, and counted for the wake-ups."""

    def __init__(self, operations: Operations, wait: float) -> None:
        self.operations = operations
        self.active = wait > 0
        self._waiting = operations.notifier.waiting()

    def __enter__(self) -> None:
        ops = self.operations
        if not self.active:
            return
        if ops.polling >= ops.limits.max_waiters:
            raise ServeError(
                429,
                f"too many long polls waiting (at most {ops.limits.max_waiters}); retry, or poll with wait 0",
            )
        ops.polling += 1
        self._waiting.__enter__()

    def __exit__(self, *exc_info: object) -> None:
        if self.active:
            self.operations.polling -= 1
            self._waiting.__exit__(*exc_info)


def _result(channel: str, cursor: int, gap: bool, texts: list[Any]) -> dict[str, Any]:
    return {"channel": channel, "cursor": cursor, "gap": gap, "messages": [orjson.Fragment(t) for t in texts]}


def _text(fragment: orjson.Fragment) -> str:
    """The text of a message in a result (for SSE data lines)."""
    return orjson.dumps(fragment).decode()


def _cursor(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidParams("since", value, "a cursor (a non-negative integer) from an earlier result")
    return value


def _bounded_int(name: str, value: Any, maximum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= maximum:
        raise InvalidParams(name, value, f"an integer from 1 to {maximum}")
    return value


def _seconds(value: Any, maximum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= maximum:
        raise InvalidParams("wait", value, f"seconds from 0 to {maximum:g}")
    return float(value)
