"""One Kraken connection for a whole team: a NATS JetStream relay and the client side that reads it.

- :class:`~kraken_nb.relay.relay.Relay` (``kraken-nb relay``): a
  ``KrakenClient`` upstream whose tap publishes every raw frame, unchanged, to
  a JetStream stream, plus checksum-valid book snapshots, a manifest of what it
  carries and gap records;
- ``KrakenClient.from_nats(url, start=...)``: the same client API fed by
  :class:`~kraken_nb.relay.source.JetStreamSource`;
- :mod:`~kraken_nb.relay.subjects`, :mod:`~kraken_nb.relay.manifest`,
  :mod:`~kraken_nb.relay.gaps`, :mod:`~kraken_nb.relay.snapshot`: the pure
  parts (subjects, message ids, what is carried, gap records, snapshot frames);
- :class:`~kraken_nb.relay.sink.Sink`: the publishing interface (JetStream
  today, another message system by writing three methods).

Everything that talks to NATS needs ``nats-py`` (``pip install 'kraken_nb[nats]'``);
the pure modules do not.
"""

from __future__ import annotations

__all__: list[str] = []
