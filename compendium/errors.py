"""Exceptions for mistakes a user can fix.

Every exception that derives from :class:`CompendiumError` is a *user error*: the command
line prints its message on one line and exits with status 2, without a traceback.  Anything
else is a bug and keeps its traceback.
"""

from __future__ import annotations


class CompendiumError(Exception):
    """Base class of errors caused by input the user can correct."""


class ConfigError(CompendiumError, ValueError):
    """A parameter, spec or registry name is wrong (unknown key, wrong type, unknown name)."""


class InputError(CompendiumError, ValueError):
    """A data table or file has the wrong content (missing column, values out of range...)."""


class DataNotFoundError(CompendiumError, FileNotFoundError):
    """A dataset root, file or model weight that the run needs is not on disk."""


class Terminated(KeyboardInterrupt):
    """SIGTERM (a cancelled CI job, ``timeout``, a scheduler), raised by the command line and
    the runner so that it unwinds like Ctrl-C: temporary files and folders are removed."""
