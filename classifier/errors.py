"""Errors shared across the package: ``NotFound`` for a lookup that names nothing, and
``EndpointUnusable`` for a model endpoint that the check before a run found cannot work.

The library raises it (or a subclass); the CLI prints it as one line with exit code 1, the web
answers with its 404 page.
"""

from __future__ import annotations


class NotFound(LookupError):
    """No row has that id (a queue item, a document, a model call, an evaluation or nightly run)."""


class EndpointUnusable(RuntimeError):
    """The configured model endpoint cannot answer (checked before a run spends anything): the
    message names the URL, the problem and what to change."""
