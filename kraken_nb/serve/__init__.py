"""The streams over REST and MCP: ``client.serve()`` in a notebook, ``kraken-nb serve`` in a terminal.

One :class:`~kraken_nb.client.KrakenClient` (one upstream connection) behind
two thin surfaces on a background thread: a REST API (FastAPI on uvicorn,
port 8080 by default) and an MCP server (the official SDK, streamable HTTP at
``/mcp``, port 9090), both running the same operations
(:mod:`kraken_nb.serve.operations`) over the cursor journal
(:mod:`kraken_nb.core.journal`). They need the ``serve`` extra:
``pip install "kraken_nb[serve]"``.
"""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING, Any, Final

from kraken_nb.serve.limits import Limits

if TYPE_CHECKING:
    from kraken_nb.client import KrakenClient
    from kraken_nb.serve.server import ServeHandle

__all__ = ["EXTRA", "Limits", "ServeHandle", "require_extra", "serve"]

EXTRA: Final = 'pip install "kraken_nb[serve]"'
"""How to install what serving needs."""

_MODULES: Final = (
    ("fastapi", "FastAPI"),
    ("uvicorn", "uvicorn"),
    ("mcp", "the MCP SDK"),
    ("sse_starlette", "sse-starlette"),
)


def require_extra() -> None:
    """Raise ``ModuleNotFoundError`` naming the ``serve`` extra when one of its packages is missing."""
    for module, name in _MODULES:
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ModuleNotFoundError(
                f"serving the streams needs {name}, which is not installed: {EXTRA}", name=module
            )


def serve(client: KrakenClient, **options: Any) -> ServeHandle:
    """Serve ``client`` over REST and MCP (see :meth:`KrakenClient.serve`); return the running handle."""
    require_extra()
    from kraken_nb.serve.server import ServeHandle

    return ServeHandle.start(client, **options)


def __getattr__(name: str) -> Any:
    if name == "ServeHandle":
        require_extra()
        from kraken_nb.serve.server import ServeHandle

        return ServeHandle
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
