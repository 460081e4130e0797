"""Errors shared by the stores: ``NotFound`` for a lookup that names nothing.

The library raises it (or a subclass); the CLI prints it as one line with exit code 1, the web
answers with its 404 page.
"""

from __future__ import annotations


class NotFound(LookupError):
    """No row has that id (a queue item, a document, a model call, an evaluation or nightly run)."""
