"""Clear errors: bad URL, unreachable server, missing stream, refused login, permissions, not carried."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from kraken_nb import KrakenClient, SubscriptionRejected
from kraken_nb.errors import InvalidParams, RelayError
from kraken_nb.relay.local import LocalNatsServer, free_port
from kraken_nb.relay.relay import Relay
from kraken_nb.simulator import Simulator

from .conftest import market, start_relay

ROOT = Path(__file__).resolve().parents[2]

USERS = """
authorization {
  users = [
    {user: admin, password: adminpw}
    {user: outsider, password: outpw, permissions: {publish: {deny: [">"]}, subscribe: {deny: [">"]}}}
    {user: reader, password: readpw, permissions: {
      publish: {allow: ["$JS.API.STREAM.INFO.>", "$JS.API.INFO"], deny: ["kraken.>"]}
      subscribe: {allow: ["_INBOX.>"]}
    }}
  ]
}
"""


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:4222",
        "nats://[bad",
        "nats://127.0.0.1:99999",
        "127.0.0.1",
        "nats://127.0.0.1:4222,http://127.0.0.1:4223",  # one bad server in a seed list
        " , ",
    ],
)
def test_a_malformed_url_is_refused_before_anything_starts(url: str) -> None:
    with pytest.raises(InvalidParams, match="nats://"):
        KrakenClient.from_nats(url)


def test_an_unreachable_server_is_a_relay_error_within_the_timeout() -> None:
    started = time.monotonic()
    with pytest.raises(RelayError, match=r"cannot connect to nats://127\.0\.0\.1:\d+ within 1\.5 s"):
        KrakenClient.from_nats(f"nats://127.0.0.1:{free_port()}", timeout=1.5)
    assert time.monotonic() - started < 6


def test_a_seed_list_reaches_a_live_node_and_shows_no_credentials(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    """A cluster's nodes as a comma-separated list: a dead first node is passed over; secrets stay hidden."""
    canary = "CANARY-nats-4412"
    dead = f"nats://someone:{canary}@127.0.0.1:{free_port()}"
    with (
        start_relay(nats_server, simulator, market("trade", symbols=("BTC/USD",))),
        KrakenClient.from_nats(f"{dead},{nats_server.url}", start="first", timeout=10) as client,
    ):
        client.subscribe("trade", "BTC/USD")
        client.wait_until(lambda c: len(c.trades()) > 0, timeout=15)
        shown = repr(client) + str(client.stats())
        assert canary not in shown and "someone" not in shown, shown
        assert "nats://***@127.0.0.1" in shown and nats_server.url in shown, shown


def test_a_missing_stream_says_to_start_a_relay(nats_server: LocalNatsServer) -> None:
    with pytest.raises(RelayError, match=r"no stream NOPE on nats://127\.0\.0\.1:\d+: start a relay first"):
        KrakenClient.from_nats(nats_server.url, stream="NOPE", timeout=5)


def test_logins_and_permissions_are_clear_errors(tmp_path: Path, simulator: Simulator) -> None:
    with LocalNatsServer(store_dir=tmp_path / "nats", config=USERS) as server:
        port = server.port
        admin = f"nats://admin:adminpw@127.0.0.1:{port}"
        with Relay(admin, market("trade", symbols=("BTC/USD",)), upstream=simulator.url, name="r1"):
            with pytest.raises(RelayError, match="refused the connection") as refused:
                KrakenClient.from_nats(f"nats://admin:wrong@127.0.0.1:{port}", timeout=5)
            assert "wrong" not in str(refused.value)  # the password is never shown
            started = time.monotonic()
            with pytest.raises(RelayError, match=r"permission denied while reading stream KRAKEN"):
                KrakenClient.from_nats(f"nats://outsider:outpw@127.0.0.1:{port}", timeout=5)
            # may read stream info but not create consumers or read snapshots
            with pytest.raises(RelayError, match="permission denied") as denied:
                KrakenClient.from_nats(f"nats://reader:readpw@127.0.0.1:{port}", timeout=5)
            assert time.monotonic() - started < 8  # at once, not after each request's 5 s timeout
            assert "readpw" not in str(denied.value) and "***@127.0.0.1" in str(denied.value)
        with pytest.raises(RelayError, match="permission denied while setting up stream KRAKEN"):
            Relay(
                f"nats://outsider:outpw@127.0.0.1:{port}", market("trade"), upstream=simulator.url, name="r2"
            ).start()


def test_what_the_relay_does_not_carry_is_rejected_naming_what_it_carries(
    nats_server: LocalNatsServer, simulator: Simulator
) -> None:
    subscriptions = [
        *market("trade", symbols=("BTC/USD", "ETH/USD")),
        *market("book", symbols=("BTC/USD",), depth=25),
    ]
    with (
        start_relay(nats_server, simulator, subscriptions),
        KrakenClient.from_nats(nats_server.url) as client,
    ):
        assert set(client.subscribe("trade", ["BTC/USD", "ETH/USD"])) == {"BTC/USD", "ETH/USD"}
        with pytest.raises(SubscriptionRejected) as symbol:
            client.subscribe("trade", ["SOL/USD"])
        assert symbol.value.rejections == {
            "SOL/USD": "trade SOL/USD is not carried by the relay (it carries trade for BTC/USD, ETH/USD)"
        }
        with pytest.raises(
            SubscriptionRejected, match=r"depth=10 \(the default\) is not carried .* depth=25"
        ):
            client.subscribe("book", "BTC/USD")
        with pytest.raises(SubscriptionRejected, match="it carries no ticker"):
            client.subscribe("ticker", "BTC/USD")
        with pytest.raises(InvalidParams):  # validated locally, as always
            client.subscribe("book", "BTC/USD", depth=11)
        client.subscribe("book", "BTC/USD", depth=25)
        client.wait_until(lambda c: (b := c.book("BTC/USD")) is not None and b.valid, timeout=10)
        assert client.book("BTC/USD").depth == 25
        client.wait_until(lambda c: not c.trades("ETH/USD").empty, timeout=10)
        consumers = client.stats()["consumers"]
        client.unsubscribe("trade", "ETH/USD")
        assert client.stats()["consumers"] == consumers - 1
        time.sleep(0.5)
        before = len(client.trades("ETH/USD"))
        time.sleep(1.5)
        assert len(client.trades("ETH/USD")) == before  # no more ETH/USD trades
        client.subscribe("trade", "ETH/USD")  # and back
        client.wait_until(lambda c: len(c.trades("ETH/USD")) > before, timeout=10)
        states = {(s.channel, s.symbol): s.state for s in client.subscriptions()}
        assert states == {
            ("trade", "BTC/USD"): "confirmed",
            ("trade", "ETH/USD"): "confirmed",
            ("book", "BTC/USD"): "confirmed",
            ("instrument", None): "confirmed",
        }
        assert client.stats()["rejected"] == 3
        assert client.ping() < 5


NO_NATS = "import sys; sys.modules['nats'] = None\n"


def test_without_nats_py_both_sides_name_the_extra_to_install() -> None:
    client_side = NO_NATS + (
        "from kraken_nb import KrakenClient\n"
        "try:\n    KrakenClient.from_nats('nats://127.0.0.1:4222')\n"
        "except Exception as exc:\n    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", client_side], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert "RelayError" in done.stdout and "pip install 'kraken_nb[nats]'" in done.stdout, (
        done.stdout + done.stderr
    )
    relay_side = (
        NO_NATS
        + "from kraken_nb.cli import main\nsys.exit(main(['relay', '--simulator', '--seconds', '1']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", relay_side], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert done.returncode == 1 and "kraken_nb[nats]" in done.stderr, done.stdout + done.stderr
