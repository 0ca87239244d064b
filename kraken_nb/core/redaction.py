"""Keep credentials in a URL out of everything the package shows or stores.

A URL such as ``ws://user:S3CRET@host/v2?token=S3CRET`` carries secrets in its
userinfo and in query values. :func:`redact_url` is the one place that decides
what is secret: the whole userinfo, and the value of every query or fragment
parameter whose name looks like a credential (token, key, secret, password,
signature, auth…). Anything shown (``repr``, log lines, errors,
``last_error``, recording headers, ``replay`` output, widgets) goes through it;
:func:`redact` scrubs the same secrets out of free text that may quote the URL
(an exception message, a library's log line), including the Basic
``Authorization`` header a WebSocket library builds from the userinfo.
"""

from __future__ import annotations

import base64
import re
from typing import Final
from urllib.parse import unquote

__all__ = ["MASK", "redact", "redact_url", "secrets_of"]

MASK: Final = "***"

_SENSITIVE_NAMES: Final = ("token", "key", "secret", "pass", "pwd", "sig", "auth", "cred", "session")
_USERINFO: Final = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/?#]*)@")
_PARAMETER: Final = re.compile(r"(?P<lead>[?&;#])(?P<name>[^=&;#]*)=(?P<value>[^&;#]*)")


def _sensitive(name: str) -> bool:
    lowered = unquote(name).lower()
    return any(word in lowered for word in _SENSITIVE_NAMES)


def redact_url(url: str) -> str:
    """``url`` with its userinfo and credential-like parameter values replaced by ``***``.

    >>> redact_url("ws://user:S3CRET@host:8080/v2?token=S3CRET&depth=10")
    'ws://***@host:8080/v2?token=***&depth=10'
    """
    text = _USERINFO.sub(lambda m: f"{m['scheme']}{MASK}@", str(url), count=1)
    return _PARAMETER.sub(
        lambda m: f"{m['lead']}{m['name']}={MASK}" if _sensitive(m["name"]) and m["value"] else m[0], text
    )


def secrets_of(url: str) -> list[str]:
    """Every secret text ``url`` holds, longest first: raw and decoded, plus the Basic auth token."""
    found: set[str] = set()
    userinfo = _USERINFO.match(str(url))
    if userinfo and userinfo["userinfo"]:
        raw = userinfo["userinfo"]
        user, _, password = raw.partition(":")
        found.update({raw, unquote(raw), user, unquote(user), password, unquote(password)})
        basic = f"{unquote(user)}:{unquote(password)}".encode()
        found.add(base64.b64encode(basic).decode("ascii"))
    for match in _PARAMETER.finditer(str(url)):
        if _sensitive(match["name"]) and match["value"]:
            found.update({match["value"], unquote(match["value"])})
    return sorted((s for s in found if s), key=len, reverse=True)


def redact(text: str, url: str) -> str:
    """``text`` with ``url`` shown redacted and every secret of ``url`` replaced by ``***``."""
    secrets = secrets_of(url)
    if not secrets:
        return text
    text = text.replace(str(url), redact_url(url))
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text
