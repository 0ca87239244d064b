"""Credentials in URLs: one function decides what is secret; nothing else changes."""

from __future__ import annotations

import base64

import pytest

from kraken_nb.core.redaction import redact, redact_url, secrets_of

CANARY = "S3CRET-canary-7f1e"


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("wss://ws.kraken.com/v2", "wss://ws.kraken.com/v2"),
        ("ws://127.0.0.1:8765/v2?depth=10", "ws://127.0.0.1:8765/v2?depth=10"),
        (f"ws://user:{CANARY}@host/v2", "ws://***@host/v2"),
        (f"ws://{CANARY}@host:99/v2", "ws://***@host:99/v2"),
        (f"wss://host/v2?token={CANARY}&depth=10", "wss://host/v2?token=***&depth=10"),
        (f"wss://host/v2?a=1&API_KEY={CANARY}", "wss://host/v2?a=1&API_KEY=***"),
        (f"wss://host/v2?Signature={CANARY};password={CANARY}", "wss://host/v2?Signature=***;password=***"),
        (f"wss://host/v2?x=1#access_token={CANARY}", "wss://host/v2?x=1#access_token=***"),
        ("wss://host/v2?token=", "wss://host/v2?token="),
        (f"ws://u:p%40{CANARY}@host/v2?secret={CANARY}", "ws://***@host/v2?secret=***"),
    ],
)
def test_redact_url_masks_userinfo_and_credential_values(url, shown):
    assert redact_url(url) == shown
    assert CANARY not in redact_url(url)


def test_redact_scrubs_the_url_the_secrets_and_the_basic_auth_token_from_any_text():
    url = f"ws://user:{CANARY}@host/v2?token={CANARY}"
    basic = base64.b64encode(f"user:{CANARY}".encode()).decode()
    text = f"failed to open {url}: > GET /v2?token={CANARY} HTTP/1.1; > Authorization: Basic {basic}"
    scrubbed = redact(text, url)
    assert CANARY not in scrubbed and basic not in scrubbed
    assert "ws://***@host/v2?token=***" in scrubbed
    assert basic in secrets_of(url)


def test_text_without_secrets_is_left_alone():
    assert redact("connection closed (1006)", "wss://ws.kraken.com/v2") == "connection closed (1006)"
    assert secrets_of("wss://ws.kraken.com/v2?depth=10") == []
