"""The capability spec is the contract: REST paths, operation ids, tools, descriptions and hints match it."""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from kraken_nb import KrakenClient
from kraken_nb.cli import build_parser
from kraken_nb.serve.models import OPERATIONS
from kraken_nb.serve.security import TOKEN_ENV
from kraken_nb.serve.server import ServeHandle

from .helpers import mcp

SPEC = Path(__file__).with_name("spot-websocket-v2-streams.yaml")


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC.read_text(encoding="utf-8"))


def exposed(spec: dict[str, Any], kind: str) -> dict[str, Any]:
    [surface] = [e for e in spec["capability"]["exposes"] if e["type"] == kind]
    return surface


def test_rest_paths_operation_ids_and_descriptions(spec: dict[str, Any], served: ServeHandle) -> None:
    resources = exposed(spec, "rest")["resources"]
    wanted = {
        (r["path"], op["method"], op["name"], op["description"]) for r in resources for op in r["operations"]
    }
    assert len(wanted) == 12
    openapi = httpx.get(served.urls["rest"] + "/openapi.json", timeout=10).json()
    ours = {
        (path, method.upper(), op["operationId"], op["description"])
        for path, methods in openapi["paths"].items()
        if path.endswith(("/subscribe", "/publish"))
        for method, op in methods.items()
    }
    assert ours == wanted
    assert {(o.path, "POST", o.operation_id, o.description) for o in OPERATIONS} == wanted


def test_mcp_tool_names_descriptions_and_hints(spec: dict[str, Any], served: ServeHandle) -> None:
    tools = exposed(spec, "mcp")["tools"]
    wanted = {
        t["name"]: (
            t["description"],
            t["hints"]["readOnly"],
            t["hints"]["destructive"],
            t["hints"]["idempotent"],
        )
        for t in tools
    }
    assert len(wanted) == 12
    listing, _ = mcp(served.urls["mcp"])
    ours = {
        tool.name: (
            tool.description,
            tool.annotations.read_only_hint,
            tool.annotations.destructive_hint,
            tool.annotations.idempotent_hint,
        )
        for tool in listing.tools
    }
    assert ours == wanted
    assert all(tool.annotations.open_world_hint is True for tool in listing.tools)


def test_each_tool_calls_the_operation_of_its_route(spec: dict[str, Any]) -> None:
    calls = {t["name"]: t["call"].split(".", 1)[1] for t in exposed(spec, "mcp")["tools"]}
    assert {o.tool: o.operation_id for o in OPERATIONS} == calls
    methods = {
        op["name"]: op["method"] for op in spec["capability"]["consumes"][0]["resources"][0]["operations"]
    }
    # The capability's inverted naming: subscribe-<channel> RECEIVEs, publish-<channel> SUBSCRIBEs.
    assert {o.operation_id: ("RECEIVE" if o.reads else "SUBSCRIBE") for o in OPERATIONS} == methods
    for tool in exposed(spec, "mcp")["tools"]:
        assert set(tool["with"]) == {"channel", "params"}


def test_ports_upstream_and_token_binding(spec: dict[str, Any]) -> None:
    assert exposed(spec, "rest")["port"] == 8080 and exposed(spec, "mcp")["port"] == 9090
    assert exposed(spec, "mcp")["transport"] == "http"
    parameters = inspect.signature(ServeHandle).parameters
    assert parameters["rest_port"].default == 8080 and parameters["mcp_port"].default == 9090
    serve = inspect.signature(KrakenClient.serve).parameters
    assert serve["rest_port"].default == 8080 and serve["mcp_port"].default == 9090
    args = build_parser().parse_args(["serve"])
    assert (args.rest_port, args.mcp_port, args.host) == (8080, 9090, "127.0.0.1")
    assert spec["capability"]["consumes"][0]["baseUri"] == "wss://ws.kraken.com/v2" == args.url
    assert spec["binds"][0]["keys"] == {TOKEN_ENV: TOKEN_ENV}
