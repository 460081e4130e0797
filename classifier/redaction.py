"""Keeping secrets out of what we store, log and print.

Whatever a model endpoint sends back (error messages, bodies, even model output) can carry the
API key: proxies and captive portals echo request headers, some 401 bodies quote the key.
:func:`redact` is applied to every such string before it reaches the database, a log line or
the terminal. It removes the keys this process was given (:func:`remember`) and anything shaped
like a credential: ``Bearer <token>`` and ``sk-…`` keys, so a key we were never told about
(another variable, a proxy's own) is caught too.
"""

from __future__ import annotations

import re
import threading
from typing import Any, overload

REDACTED = "[redacted key]"

# A bearer token has a digit somewhere and at least 8 characters, so prose ("the bearer of the
# passport") is left alone; "sk-" keys (OpenAI's, Anthropic's "sk-ant-…") likewise need 8.
_SHAPES = re.compile(
    r"(?i:\bbearer)\s+(?=[A-Za-z0-9._~+/=-]*\d)[A-Za-z0-9._~+/=-]{8,}"
    r"|\bsk-[A-Za-z0-9_-]{8,}"
)

_lock = threading.Lock()
_secrets: tuple[str, ...] = ()


def remember(secret: str | None) -> None:
    """Redact this exact value from now on, wherever it turns up (shorter than 4: ignored)."""
    global _secrets
    if not secret or len(secret) < 4:
        return
    with _lock:
        if secret not in _secrets:
            # longest first, so a key that contains another is removed whole
            _secrets = tuple(sorted({*_secrets, secret}, key=len, reverse=True))


@overload
def redact(text: str) -> str: ...
@overload
def redact(text: None) -> None: ...
@overload
def redact(text: str | None) -> str | None: ...
def redact(text: str | None) -> str | None:
    """``text`` with every remembered secret and credential-shaped token replaced by ``[redacted key]``."""
    if not text:
        return text
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _SHAPES.sub(lambda m: "Bearer " + REDACTED if m[0][:1] in "bB" else REDACTED, text)


def redact_all(value: Any) -> Any:
    """:func:`redact` applied to every string inside nested dicts, lists and tuples."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_all(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact_all(v) for v in value)
    return value
