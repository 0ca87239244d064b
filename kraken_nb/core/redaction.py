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
import logging
import re
import sys
import traceback
from collections.abc import MutableMapping
from typing import Any, Final
from urllib.parse import unquote

__all__ = ["MASK", "RedactingLogger", "redact", "redact_url", "secrets_of"]

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


class RedactingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger that scrubs ``url``'s secrets from every line (and traceback) it passes on.

    Give it to libraries that log what they send: at DEBUG, websockets logs the
    request line (with its query) and the headers (with the Basic
    ``Authorization`` built from the userinfo).
    """

    def __init__(self, logger: logging.Logger, url: str) -> None:
        super().__init__(logger, {})
        self._url = url
        self._plain = not secrets_of(url)

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log ``msg % args`` with the secrets of the URL replaced by ``***``."""
        if not self.isEnabledFor(level):
            return
        kwargs.setdefault("stacklevel", 2)
        if self._plain:
            self.logger.log(level, msg, *args, **kwargs)
            return
        text = str(msg) % args if args else str(msg)
        exc_info = kwargs.pop("exc_info", None)
        if exc_info:
            exc = exc_info[1] if isinstance(exc_info, tuple) else exc_info
            exc = exc if isinstance(exc, BaseException) else sys.exception()
            if exc is not None:
                text += "\n" + "".join(traceback.format_exception(exc)).rstrip()
        self.logger.log(level, "%s", redact(text, self._url), **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        """Pass ``msg`` on unchanged (``log`` does the work)."""
        return msg, kwargs
