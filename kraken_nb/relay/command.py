"""``kraken-nb relay``: its options and its run loop (the rest of the command line is in ``kraken_nb.cli``).

``kraken-nb relay --nats nats://127.0.0.1:4222 [--simulator | --url URL]
--channel trade --channel book --symbol BTC/USD --symbol ETH/USD [--depth 10]
[--max-age 24h] [--max-bytes 1GB]`` runs until Ctrl-C or SIGTERM, then stops
the upstream connection, publishes what is still buffered and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from typing import Any, Final

from kraken_nb.core.params import Subscription, validate_subscription
from kraken_nb.core.redaction import redact_url
from kraken_nb.errors import InvalidParams
from kraken_nb.relay.connection import shown_nats_url
from kraken_nb.relay.streams import DEFAULT_STREAM, StreamSettings

__all__ = ["add_relay_parser", "parse_duration", "parse_size", "run_relay", "subscriptions_from"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$", re.IGNORECASE)
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(b|kb|mb|gb|tb|kib|mib|gib|tib)?\s*$", re.IGNORECASE)
_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_BYTES: Final = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"30m"``, ``"24h"``, ``"7d"`` → seconds."""
    match = _DURATION.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration such as 90s, 30m, 24h or 7d")
    return float(match[1]) * _SECONDS[(match[2] or "s").lower()]


def parse_size(text: str) -> int:
    """``"1000000"``, ``"500MB"``, ``"1GiB"`` → bytes."""
    match = _SIZE.match(text)
    if match is None:
        raise argparse.ArgumentTypeError(f"{text!r} is not a size such as 500MB or 1GiB")
    return int(float(match[1]) * _BYTES[(match[2] or "b").lower()])


def add_relay_parser(sub: Any, add_source_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Add the ``relay`` subcommand to ``sub`` (``add_source_options`` adds --url/--simulator/--speed)."""
    relay = sub.add_parser(
        "relay",
        help="receive Kraken once and publish every frame to a NATS JetStream stream for a team",
        description=(
            "Hold one upstream connection and publish every raw frame, unchanged, to a NATS JetStream "
            "stream (plus book snapshots, a manifest and gap records). Ctrl-C or SIGTERM stops it: the "
            "frames still buffered are published first."
        ),
    )
    relay.add_argument(
        "--nats",
        default="nats://127.0.0.1:4222",
        help="NATS server URL, or a comma-separated seed list of a cluster's nodes",
    )
    relay.add_argument("--channel", action="append", help="channel to relay (repeatable; default trade)")
    relay.add_argument("--symbol", action="append", help="symbol (repeatable; default BTC/USD)")
    relay.add_argument("--depth", type=int, help="book depth (default 10)")
    relay.add_argument("--interval", type=int, action="append", help="ohlc interval in minutes (repeatable)")
    relay.add_argument("--event-trigger", choices=("bbo", "trades"), help="ticker trigger (default trades)")
    relay.add_argument(
        "--stream", default=DEFAULT_STREAM, help=f"JetStream stream name (default {DEFAULT_STREAM})"
    )
    relay.add_argument(
        "--max-age", type=parse_duration, default=24 * 3600.0, help="keep messages (default 24h)"
    )
    relay.add_argument("--max-bytes", type=parse_size, default=1 << 30, help="stream size cap (default 1GiB)")
    relay.add_argument(
        "--duplicate-window",
        type=parse_duration,
        default=120.0,
        help="dedupe window of message ids (default 2m)",
    )
    relay.add_argument(
        "--replicas", type=int, default=1, help="stream replicas on a NATS cluster (default 1)"
    )
    relay.add_argument(
        "--name", help="relay name, unique per relay and kept across restarts (default hostname)"
    )
    relay.add_argument(
        "--max-buffer", type=int, default=100_000, help="frames held while NATS is away (default 100000)"
    )
    relay.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)")
    add_source_options(relay)


def subscriptions_from(args: argparse.Namespace) -> list[Subscription]:
    """The validated subscriptions the relay's options ask for."""
    channels = list(dict.fromkeys(args.channel or ["trade"]))
    symbols = args.symbol or ["BTC/USD"]
    subscriptions = []
    for channel in channels:
        if channel == "instrument":
            subscriptions.append(validate_subscription("instrument"))
            continue
        if channel == "ohlc":
            for interval in args.interval or [None]:
                subscriptions.append(validate_subscription("ohlc", symbols, interval=interval))
            continue
        params: dict[str, Any] = {}
        if channel == "book":
            params["depth"] = args.depth
        if channel == "ticker":
            params["event_trigger"] = args.event_trigger
        subscriptions.append(validate_subscription(channel, symbols, **params))
    return subscriptions


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """An event set by SIGTERM or SIGINT (Ctrl-C) while the block runs (main thread only)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for number in previous:
        signal.signal(number, lambda *_: stop.set())
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def run_relay(
    args: argparse.Namespace, source: Callable[[argparse.Namespace], AbstractContextManager[str]]
) -> int:
    """Run the relay until a signal or ``--seconds``; print what it did; return the exit status."""
    from kraken_nb.relay.relay import Relay

    try:
        settings = StreamSettings(
            name=args.stream,
            max_age=args.max_age,
            max_bytes=args.max_bytes,
            duplicate_window=args.duplicate_window,
            replicas=args.replicas,
        )
    except InvalidParams as exc:
        print(f"kraken-nb relay: {exc}", file=sys.stderr)
        return 2
    subscriptions = subscriptions_from(args)
    with _stop_on_signals() as stop, source(args) as url:
        relay = Relay(
            args.nats,
            subscriptions,
            upstream=url,
            name=args.name,
            stream=settings,
            max_buffer=args.max_buffer,
        )
        relay.start()
        try:
            shown = ", ".join(f"{s.channel} {' '.join(s.symbols)}".strip() for s in subscriptions)
            print(
                f"Relaying {shown} from {redact_url(url)} to {shown_nats_url(args.nats)} "
                f"stream {settings.name} as {relay.name}; Ctrl-C stops.",
                flush=True,
            )
            deadline = None if args.seconds is None else time.monotonic() + args.seconds
            while not stop.is_set() and (deadline is None or time.monotonic() < deadline):
                stop.wait(0.25 if deadline is None else min(0.25, max(deadline - time.monotonic(), 0)))
        finally:
            relay.close()
        stats = relay.stats()
    print(
        f"Stopped: published {stats['published']} messages ({stats['duplicates']} duplicates), "
        f"{stats['snapshots']} snapshots, {stats['dropped']} dropped, {stats['buffered']} unpublished",
        flush=True,
    )
    return 0
