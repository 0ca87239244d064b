"""The ``kraken-nb`` command: demo notebooks, the simulator, record, replay, convert, tail, serve and relay.

- ``kraken-nb demo [--check]``: open (or run headless) the quickstart notebook
- ``kraken-nb sim --port N``: serve the simulator (as ``python -m kraken_nb.simulator``)
- ``kraken-nb record --out F``: write raw frames with receive times to a gzip JSON-lines file
  (``--format parquet``: record a hive-partitioned Parquet dataset into the folder F)
- ``kraken-nb replay F [--serve]``: summarise a recording, or serve it over WebSocket at its pace
- ``kraken-nb convert F --out DIR``: turn a recording into a Parquet dataset
- ``kraken-nb tail SYMBOL``: a live ticker line in the terminal
- ``kraken-nb serve``: the streams over REST (port 8080) and MCP (port 9090) until Ctrl-C or SIGTERM
- ``kraken-nb relay --nats URL``: receive once, publish to NATS JetStream for a team

This module is the terminal's side of the package: it writes to stdout/stderr
and returns exit codes; the file format lives in :mod:`kraken_nb.recording` and
the replay server in :mod:`kraken_nb.replay`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import json
import logging
import math
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import IO, Any, Final

import pandas as pd
from websockets.exceptions import WebSocketException

from kraken_nb.client import KRAKEN_WS_URL, KrakenClient
from kraken_nb.connect import SOURCE_ENV, kraken_reachable
from kraken_nb.core.params import Subscription, validate_subscription
from kraken_nb.core.redaction import RedactingLogger, redact, redact_url
from kraken_nb.core.session import Session
from kraken_nb.errors import KrakenError
from kraken_nb.history.recorder import DEFAULT_ROLL_ROWS, DEFAULT_ROLL_SECONDS, Recorder
from kraken_nb.recording import (
    Frame,
    RecordingHeader,
    RecordingReader,
    RecordingWriter,
    replay,
    subscriptions_of,
)
from kraken_nb.relay.command import add_relay_parser, run_relay
from kraken_nb.replay import serve_recording

__all__ = ["QUICKSTART", "build_parser", "check_notebook", "find_notebooks", "main"]

QUICKSTART: Final = "01_quickstart.ipynb"
CELL_TIMEOUT: Final = 120.0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``kraken-nb`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog="kraken-nb",
        description="Kraken market data in Jupyter: demo, sim, record, replay, convert, tail, serve, relay.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log lifecycle events to stderr")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="open the demo notebooks in JupyterLab (or --check them headless)")
    demo.add_argument("--check", action="store_true", help="run the notebook headless and report")
    demo.add_argument(
        "--simulator", action="store_true", help="use the simulator even if Kraken is reachable"
    )
    demo.add_argument("--notebook", default=QUICKSTART, help=f"notebook to open (default {QUICKSTART})")
    demo.add_argument("--no-browser", action="store_true", help="start JupyterLab without opening a browser")

    sub.add_parser("sim", help="serve the simulator (all options: kraken-nb sim --help)", add_help=False)

    record = sub.add_parser("record", help="record raw frames to a .jsonl.gz file, or a Parquet dataset")
    record.add_argument(
        "--out", required=True, type=Path, help="output file (.jsonl.gz), or folder (parquet)"
    )
    record.add_argument(
        "--format",
        choices=("jsonl", "parquet"),
        default="jsonl",
        help="jsonl: raw frames as gzip JSON lines (default); parquet: a hive-partitioned dataset",
    )
    _add_roll_options(record)
    record.add_argument("--channel", action="append", help="channel to record (repeatable; default trade)")
    record.add_argument("--symbol", action="append", help="symbol (repeatable; default BTC/USD)")
    record.add_argument("--depth", type=int, help="book depth (book channel)")
    record.add_argument("--interval", type=int, help="candle interval in minutes (ohlc channel)")
    record.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)")
    _add_source_options(record)

    replay_cmd = sub.add_parser("replay", help="summarise a recording, or serve it over WebSocket")
    replay_cmd.add_argument("file", type=Path, help="a recording made by kraken-nb record")
    replay_cmd.add_argument("--serve", action="store_true", help="serve it on loopback instead")
    replay_cmd.add_argument("--port", type=int, default=8765, help="port for --serve; 0 picks a free one")
    replay_cmd.add_argument("--speed", type=float, default=1.0, help="pace multiplier for --serve")

    convert = sub.add_parser("convert", help="turn a .jsonl.gz recording into a Parquet dataset")
    convert.add_argument("file", type=Path, help="a recording made by kraken-nb record")
    convert.add_argument("--out", required=True, type=Path, help="dataset folder (created if missing)")
    _add_roll_options(convert)
    add_relay_parser(sub, _add_source_options)

    tail = sub.add_parser("tail", help="a live ticker line for SYMBOL in the terminal")
    tail.add_argument("symbol", help="pair, e.g. BTC/USD")
    tail.add_argument("--seconds", type=float, help="stop after this many seconds (default: Ctrl-C)")
    _add_source_options(tail)

    serve = sub.add_parser("serve", help="serve the streams over REST and MCP (one upstream connection)")
    _add_source_options(serve)
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--rest-port", type=int, default=8080, help="REST port (default 8080; 0 picks one)")
    serve.add_argument("--mcp-port", type=int, default=9090, help="MCP port (default 9090; 0 picks one)")
    serve.add_argument(
        "--api-key-env",
        metavar="NAME",
        help="environment variable holding the API key clients send as a bearer token "
        "(required to bind anything but loopback)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME",
        help="another host name clients may address the server by (repeatable; DNS-rebinding check)",
    )
    return parser


def _add_roll_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--roll-seconds",
        type=float,
        default=DEFAULT_ROLL_SECONDS,
        help=f"parquet: seconds of data per part file (default {DEFAULT_ROLL_SECONDS:g})",
    )
    parser.add_argument(
        "--roll-rows",
        type=int,
        default=DEFAULT_ROLL_ROWS,
        help=f"parquet: start a new part file after this many rows (default {DEFAULT_ROLL_ROWS})",
    )


def _add_source_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--url", default=KRAKEN_WS_URL, help=f"WebSocket URL (default {KRAKEN_WS_URL})")
    group.add_argument("--simulator", action="store_true", help="use an embedded simulator")
    parser.add_argument("--speed", type=float, default=1.0, help="simulator speed (with --simulator)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``kraken-nb`` with ``argv`` (default ``sys.argv[1:]``); return the exit status."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] == ["sim"]:
        from kraken_nb.simulator.__main__ import main as simulator_main

        return simulator_main(args_list[1:])
    args = build_parser().parse_args(args_list)
    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    commands = {
        "demo": _demo,
        "record": _record,
        "replay": _replay,
        "convert": _convert,
        "tail": _tail,
        "serve": _serve,
        "relay": lambda a: run_relay(a, _source),
    }
    try:
        return commands[args.command](args)
    except KeyboardInterrupt:
        return 130
    except (KrakenError, OSError, WebSocketException) as exc:
        message = str(exc)
        for url in (getattr(args, "url", None), getattr(args, "nats", None)):
            if url:
                message = redact(message, url)
        print(f"kraken-nb {args.command}: error: {message}", file=sys.stderr)
        return 1


# -- demo ---------------------------------------------------------------------------


def find_notebooks() -> Path | None:
    """The ``notebooks/`` folder of a source checkout (next to the package) or of the CWD."""
    candidates = [Path(__file__).resolve().parent.parent / "notebooks", Path.cwd() / "notebooks"]
    for folder in candidates:
        if (folder / QUICKSTART).is_file():
            return folder
    return None


def check_notebook(
    path: Path,
    source: str = "simulator",
    cell_timeout: float = CELL_TIMEOUT,
    kernel_stderr: IO[bytes] | None = None,
) -> int:
    """Execute ``path`` headless on the ``python3`` kernel with ``KRAKEN_NB_SOURCE=source``.

    Returns the number of code cells run; a failing cell raises nbclient's
    ``CellExecutionError``. The kernel's own stderr goes to ``kernel_stderr``
    when given.
    """
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    runner = NotebookClient(
        notebook,
        kernel_name="python3",
        timeout=int(cell_timeout),
        resources={"metadata": {"path": str(path.parent)}},
    )
    launch: dict[str, Any] = {} if kernel_stderr is None else {"stderr": kernel_stderr}
    runner.execute(env={**os.environ, SOURCE_ENV: source}, **launch)
    return sum(1 for cell in notebook.cells if cell.cell_type == "code")


def _demo(args: argparse.Namespace) -> int:
    folder = find_notebooks()
    if folder is None:
        print(
            "kraken-nb demo: the notebooks/ folder was not found next to the package or in the "
            "current directory.\nClone the repository and run this from its root (pip install -e .).",
            file=sys.stderr,
        )
        return 2
    notebook = folder / args.notebook
    if not notebook.is_file():
        print(f"kraken-nb demo: no notebook {args.notebook!r} in {folder}", file=sys.stderr)
        return 2
    if args.check:
        return _demo_check(notebook)
    if importlib.util.find_spec("jupyterlab") is None:
        print("kraken-nb demo: JupyterLab is not installed (pip install jupyterlab)", file=sys.stderr)
        return 2
    env = dict(os.environ)
    simulator = None
    if args.simulator or (SOURCE_ENV not in env and not kraken_reachable()):
        from kraken_nb.simulator import Simulator

        simulator = Simulator()
        env[SOURCE_ENV] = simulator.start_in_thread()
        reason = "as asked" if args.simulator else "because Kraken is unreachable"
        print(f"Serving the simulator at {env[SOURCE_ENV]} {reason}.")
    else:
        env.setdefault(SOURCE_ENV, "kraken")
        print(f"Notebooks will use {SOURCE_ENV}={env[SOURCE_ENV]}.")
    command = [sys.executable, "-m", "jupyterlab", str(notebook.relative_to(folder.parent))]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")  # containers often run as root; JupyterLab refuses it otherwise
    try:
        with subprocess.Popen(command, cwd=folder.parent, env=env) as lab:
            previous = signal.signal(signal.SIGTERM, lambda *_: lab.terminate())
            try:
                return lab.wait()
            except KeyboardInterrupt:
                try:
                    return lab.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    lab.terminate()
                    return lab.wait()
            finally:
                signal.signal(signal.SIGTERM, previous)
    finally:
        if simulator is not None:
            simulator.close()


def _demo_check(notebook: Path) -> int:
    missing = [
        name for name in ("nbclient", "nbformat", "ipykernel") if importlib.util.find_spec(name) is None
    ]
    if missing:
        print(f"kraken-nb demo --check needs {', '.join(missing)} (pip install -e '.[dev]')", file=sys.stderr)
        return 2
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    print(f"Running {notebook.name} headless against the simulator…", flush=True)
    started = time.monotonic()
    with tempfile.TemporaryFile() as kernel_log:
        try:
            cells = check_notebook(notebook, kernel_stderr=kernel_log)
        except (CellExecutionError, CellTimeoutError, DeadKernelError) as exc:
            kernel_log.seek(0)
            detail = kernel_log.read().decode("utf-8", "replace").strip()
            print(f"FAILED: {notebook.name}\n{exc}", file=sys.stderr)
            if detail:
                print(f"kernel stderr:\n{detail}", file=sys.stderr)
            return 1
    print(f"OK: {notebook.name} ran {cells} code cells in {time.monotonic() - started:.1f} s")
    return 0


# -- record ---------------------------------------------------------------------------


def _record(args: argparse.Namespace) -> int:
    channels = args.channel or ["trade"]
    symbols = args.symbol or ["BTC/USD"]
    subscriptions = []
    for channel in dict.fromkeys(channels):
        params: dict[str, Any] = {}
        if channel == "book" and args.depth is not None:
            params["depth"] = args.depth
        if channel == "ohlc" and args.interval is not None:
            params["interval"] = args.interval
        subscriptions.append(
            validate_subscription(channel, None if channel == "instrument" else symbols, **params)
        )
    if args.format == "parquet":
        return _record_dataset(args, subscriptions)
    with _source(args) as url:
        header = RecordingHeader(
            url=redact_url(url),  # a recording never stores credentials
            subscriptions=tuple(s.request("subscribe")["params"] for s in subscriptions),
            started_ns=time.time_ns(),
            version=_version(),
        )
        print(
            f"Recording {', '.join(channels)} for {', '.join(symbols)} from {header.url} to {args.out}",
            flush=True,
        )
        recorder = _Recorder(url, header, args.out, args.seconds)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(recorder.run())
        print(f"Wrote {recorder.frames} frames to {args.out}")
    return 0


class _Recorder:
    """Subscribe like a client would and write every received frame until time is up.

    The file is created once the connection is open, so a failed connect leaves none.
    ``url`` is the one to dial (the header's is redacted).
    """

    def __init__(self, url: str, header: RecordingHeader, out: Path, seconds: float | None) -> None:
        self.url = url
        self.header = header
        self.out = out
        self.seconds = seconds
        self.frames = 0

    async def run(self) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import ConnectionClosed

        session = Session()
        for subscription in subscriptions_of(self.header):
            session.subscribe(subscription)
        deadline = math.inf if self.seconds is None else time.monotonic() + self.seconds
        logger = RedactingLogger(logging.getLogger("websockets.client"), self.url)
        async with connect(
            self.url, max_size=2**26, open_timeout=10, close_timeout=2, logger=logger
        ) as websocket:
            session.connection_made(time.time_ns())
            with RecordingWriter(self.out, self.header) as writer:
                try:
                    while (remaining := deadline - time.monotonic()) > 0:
                        for request in session.data_to_send():
                            await websocket.send(json.dumps(request))
                        try:
                            async with asyncio.timeout(None if math.isinf(remaining) else remaining):
                                text = await websocket.recv()
                        except TimeoutError:
                            break
                        received = time.time_ns()
                        writer.write(received, text)
                        self.frames = writer.frames
                        session.feed(text, received)
                except ConnectionClosed as exc:
                    print(f"The server closed the connection: {redact(str(exc), self.url)}", file=sys.stderr)


def _record_dataset(args: argparse.Namespace, subscriptions: list[Subscription]) -> int:
    """Record with a client (which reconnects and resubscribes) into a Parquet dataset folder."""
    with _source(args) as url, KrakenClient(url) as client:
        recorder = client.record_to(args.out, roll_seconds=args.roll_seconds, roll_rows=args.roll_rows)
        print(f"Recording to the Parquet dataset {args.out} from {client.url}", flush=True)
        client.wait_connected()
        for subscription in subscriptions:
            client.subscribe(subscription.channel, subscription.symbols or None, **subscription.params)
        deadline = math.inf if args.seconds is None else time.monotonic() + args.seconds
        with contextlib.suppress(KeyboardInterrupt):
            while recorder.running and time.monotonic() < deadline:
                time.sleep(min(0.2, max(deadline - time.monotonic(), 0)))
        recorder.stop()  # raises the DatasetError that stopped it, if any
        _print_dataset(recorder.stats())
    return 0


def _print_dataset(stats: dict[str, Any]) -> None:
    rows = ", ".join(f"{table} {count}" for table, count in stats["rows"].items() if count) or "no rows"
    print(f"Wrote {stats['files']} files ({stats['bytes']:,} bytes) to {stats['directory']}: {rows}")
    if stats["skipped_recorded"]:
        print(f"Skipped {stats['skipped_recorded']} rows the dataset already held")


@contextlib.contextmanager
def _source(args: argparse.Namespace) -> Iterator[str]:
    """Yield the URL to use: ``--url``, or an embedded simulator's while the block runs."""
    if not args.simulator:
        yield args.url
        return
    from kraken_nb.simulator import Simulator

    simulator = Simulator(speed=args.speed)
    try:
        yield simulator.start_in_thread()
    finally:
        simulator.close()


def _version() -> str:
    from kraken_nb import __version__

    return __version__


# -- replay ----------------------------------------------------------------------------


def _replay(args: argparse.Namespace) -> int:
    if not args.speed > 0:
        print(f"kraken-nb replay: --speed must be positive, got {args.speed}", file=sys.stderr)
        return 2
    with RecordingReader(args.file) as reader:
        header = reader.header
        subs = ", ".join(
            f"{s.get('channel')} {','.join(s.get('symbol', []))}".strip() for s in header.subscriptions
        )
        started = datetime.fromtimestamp(header.started_ns / 1e9, UTC).isoformat(timespec="seconds")
        print(f"Recording of {redact_url(header.url)} ({subs}) started {started}")
        if not args.serve:
            summary = replay(header, reader)
            _warn_if_truncated(reader)
            print("\n".join(summary.lines()))
            return 0
        frames = list(reader)
        _warn_if_truncated(reader)

    def announce(url: str, data_frames: int) -> None:
        print(url, flush=True)
        print(f"Replaying {data_frames} frames at {args.speed:g}x to each client; Ctrl-C stops.", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve_recording(header, frames, args.port, args.speed, announce))
    return 0


def _warn_if_truncated(reader: RecordingReader, command: str = "replay") -> None:
    if reader.truncated:
        print(
            f"kraken-nb {command}: warning: {reader.path} is truncated after line {reader.lines}; "
            f"{command}ing the frames before the cut",
            file=sys.stderr,
        )


# -- convert ----------------------------------------------------------------------------


def _convert(args: argparse.Namespace) -> int:
    """Feed a recording through a Session with the recorder's tap attached, as live, rolling on its times."""
    with RecordingReader(args.file) as reader:
        session = Session()
        recorder = Recorder(
            session, args.out, roll_seconds=args.roll_seconds, roll_rows=args.roll_rows, background=False
        )

        def frames() -> Iterator[Frame]:
            for frame in reader:
                yield frame
                recorder.poll(frame.t)  # the frame was fed by now

        try:
            summary = replay(reader.header, frames(), session)
        finally:
            recorder.stop()
        _warn_if_truncated(reader, "convert")
    print(f"Converted {summary.frames} frames of {args.file}")
    _print_dataset(recorder.stats())
    return 0


# -- tail ----------------------------------------------------------------------------------


def _tail(args: argparse.Namespace) -> int:
    with _source(args) as url, KrakenClient(url) as client:
        client.wait_connected()
        client.subscribe("ticker", [args.symbol])
        deadline = math.inf if args.seconds is None else time.monotonic() + args.seconds
        width = 0
        try:
            while time.monotonic() < deadline:
                line = _ticker_line(args.symbol, client.ticker_latest())
                if line is not None:
                    sys.stdout.write("\r" + line.ljust(width))
                    sys.stdout.flush()
                    width = max(width, len(line))
                time.sleep(min(0.25, max(deadline - time.monotonic(), 0)))
        except KeyboardInterrupt:
            pass
        finally:
            sys.stdout.write("\n")
            sys.stdout.flush()
    return 0


def _serve(args: argparse.Namespace) -> int:
    from kraken_nb.serve import require_extra

    try:
        require_extra()
    except ModuleNotFoundError as exc:
        print(f"kraken-nb serve: {exc}", file=sys.stderr)
        return 2
    api_key = None
    if args.api_key_env:
        api_key = os.environ.get(args.api_key_env)
        if not api_key:
            print(f"kraken-nb serve: the environment variable {args.api_key_env} is not set", file=sys.stderr)
            return 2
    stop = threading.Event()
    handlers = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        client = KrakenClient.simulated(speed=args.speed) if args.simulator else KrakenClient(args.url)
        with client:
            handle = client.serve(
                args.rest_port,
                args.mcp_port,
                host=args.host,
                api_key=api_key,
                allowed_hosts=args.allowed_host,
            )
            print(f"Streams of {client.url}", flush=True)
            print(f"REST {handle.urls['rest']} (OpenAPI docs at {handle.urls['docs']})", flush=True)
            print(f"MCP  {handle.urls['mcp']}", flush=True)
            print(f'MCP client configuration: {{"type": "http", "url": "{handle.urls["mcp"]}"}}', flush=True)
            print("Ctrl-C or SIGTERM stops.", flush=True)
            while not stop.wait(0.25):
                if not handle.running:
                    print("kraken-nb serve: the servers stopped unexpectedly", file=sys.stderr)
                    return 1
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    print("Stopped.", flush=True)
    return 0


def _ticker_line(symbol: str, latest: Any) -> str | None:
    """``BTC/USD  last 64000.1  bid 64000.0 / ask 64000.2  spread 0.2  24h -0.14%`` (None before data)."""
    if symbol not in latest.index:
        return None
    row = latest.loc[symbol]
    spread = row["ask"] - row["bid"]
    when = row["time"] if pd.notna(row["time"]) else row["received"]  # Kraken's time, else arrival
    stamp = when.strftime("%H:%M:%S") if pd.notna(when) else ""
    return (
        f"{symbol}  last {row['last']}  bid {row['bid']} / ask {row['ask']}  "
        f"spread {spread:.{_decimals(row['bid'], row['ask'])}f}  24h {row['change_pct']:+.2f}%  {stamp}"
    )


def _decimals(*values: float) -> int:
    """How many decimals the shortest text of ``values`` needs (so spreads print like prices)."""
    exponents = (Decimal(repr(float(v))).normalize().as_tuple().exponent for v in values)
    return max((-e for e in exponents if isinstance(e, int)), default=0) if values else 0


if __name__ == "__main__":
    sys.exit(main())
