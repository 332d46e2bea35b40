"""Errors the engine raises. Every message names the problem and the fix.

The QGIS adapters turn these into QgsProcessingException / message-bar text; the command line
prints them without a traceback.
"""


class ChangeAnywhereError(Exception):
    """Base class: a problem the user can fix (bad input, bad model, bad option)."""


class InputError(ChangeAnywhereError):
    """A raster, vector, table or option the user gave is unusable."""


class ModelError(ChangeAnywhereError):
    """The model package is missing, corrupt or does not fit the input."""


class Cancelled(ChangeAnywhereError):
    """The user cancelled; nothing was written."""


class WorkersLost(ChangeAnywhereError):
    """A dataset's workers died (killed, out of memory, a cluster's machines gone) and none is left to go on with.

    The finished samples are kept: ``kept`` of ``count`` in ``out``; the same command finishes the rest."""

    def __init__(self, message: str, *, kept: int, count: int, out) -> None:
        super().__init__(message)
        self.kept, self.count, self.out = kept, count, out
