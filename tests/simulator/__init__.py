"""Tests of the embedded Kraken v2 simulator, over raw WebSockets and on the pure model."""
