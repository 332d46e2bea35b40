"""The error of unusable training data: its own module, so that the data readers (data.py) and the release
layouts (releases.py) can both raise it without importing each other."""


class DataError(Exception):
    """A data folder cannot be used; the message names the problem and the fix."""
