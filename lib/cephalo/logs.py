"""Where the kit's messages go: library modules log through ``logging.getLogger(__name__)``
and never print; an entry point (the CLI, ``cephalo demo``, the training notebook) decides
that they are shown, with :func:`show_logs`."""

from __future__ import annotations

import logging

import click

KIT = "cephalo"


class _Console(logging.Handler):
    """Each record as one line on the *current* stdout (stderr from warnings up), as
    ``click.echo`` writes: a captured or redirected stdout gets it too."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(self.format(record), err=record.levelno >= logging.WARNING)
        except Exception:
            self.handleError(record)


def show_logs(level: int = logging.INFO) -> None:
    """Show the kit's records (loggers ``cephalo.*``) from ``level`` up, as plain lines;
    calling it again changes only the level."""
    logger = logging.getLogger(KIT)
    if not any(isinstance(h, _Console) for h in logger.handlers):
        handler = _Console()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
