"""Run the simulator standalone: ``python -m kraken_nb.simulator --port 8765``.

Prints the URL on stdout (one line, flushed) and serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys

from kraken_nb.simulator.pairs import DEFAULT_PAIRS
from kraken_nb.simulator.server import Simulator

__all__ = ["build_parser", "main"]

logger = logging.getLogger(__name__)


def build_parser() -> argparse.ArgumentParser:
    """The command-line options of the simulator."""
    parser = argparse.ArgumentParser(
        prog="python -m kraken_nb.simulator",
        description="Serve a simulated Kraken Spot WebSocket v2 market on loopback.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port to listen on; 0 picks a free one")
    parser.add_argument("--seed", type=int, default=7, help="seed of the market model")
    parser.add_argument("--speed", type=float, default=1.0, help="market clock speed-up over wall time")
    parser.add_argument(
        "--pairs",
        default=None,
        help=f"comma-separated symbols to list (default: {','.join(DEFAULT_PAIRS)})",
    )
    parser.add_argument(
        "--heartbeat-interval", type=float, default=1.0, help="seconds of silence before a heartbeat"
    )
    parser.add_argument(
        "--book-snapshot-timestamps",
        action="store_true",
        help="add a timestamp to book snapshots (Kraken's carry none)",
    )
    parser.add_argument("--log-level", default="INFO", help="logging level for stderr (default INFO)")
    return parser


async def _serve(simulator: Simulator) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(signum, stop.set)
    async with simulator:
        sys.stdout.write(simulator.url + "\n")
        sys.stdout.flush()
        await stop.wait()


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv``, run the simulator until interrupted; return the exit status."""
    args = build_parser().parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(
            level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
    pairs = [p.strip() for p in args.pairs.split(",") if p.strip()] if args.pairs else None
    try:
        simulator = Simulator(
            seed=args.seed,
            speed=args.speed,
            pairs=pairs,
            host=args.host,
            port=args.port,
            heartbeat_interval=args.heartbeat_interval,
            book_snapshot_timestamps=args.book_snapshot_timestamps,
        )
        asyncio.run(_serve(simulator))
    except KeyboardInterrupt:
        pass
    except (ValueError, OSError) as exc:
        logger.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
