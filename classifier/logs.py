"""Log lines a person can read and a machine can parse.

``text``: ``2026-11-23T02:30:01Z INFO evidence.nightly crawl done: new 12, ... | {"event": ...}``
``json``: one JSON object per line, with the same fields: ``time``, ``level``, ``logger``,
``message`` and, for events, ``event`` plus its data (counts, seconds, reasons).

Events are logged as ``log.info(message, extra={"event": name, "data": {...}})``.
"""

from __future__ import annotations

import json
import logging
import time

FORMATS = ("text", "json")


def _fields(record: logging.LogRecord) -> dict:
    fields = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(record.created)),
        "level": record.levelname,
        "logger": record.name,
        "message": record.getMessage(),
    }
    event = getattr(record, "event", None)
    if event:
        fields["event"] = event
        fields.update(getattr(record, "data", None) or {})
    return fields


class JSONFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        line = f"{fields.pop('time')} {fields.pop('level')} {fields.pop('logger')} {fields.pop('message')}"
        if fields:
            line += " | " + json.dumps(fields, ensure_ascii=False, default=str)
        return line


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    """Send the evidence.* loggers to stderr in ``fmt`` (text | json)."""
    if fmt not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler()
    handler.setFormatter(JSONFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("evidence")
    logger.handlers[:] = [handler]
    logger.setLevel(level)
    logger.propagate = False
