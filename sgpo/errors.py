"""The one error type users see. Its message names the file, line or field and says what to do.

Tracebacks are for bugs: the CLI turns any SgpoError into a one-line message and exit code 2.
"""


class SgpoError(Exception):
    """A problem with the user's input or environment, explained in the message."""

    exit_code = 2


class DataError(SgpoError):
    """A dataset could not be read: names the file, line and field."""


class ConfigError(SgpoError):
    """A knob is out of range or inconsistent: names the option."""


class ModelError(SgpoError):
    """A model could not be resolved or loaded: names the folder or id."""


class StoreError(SgpoError):
    """The SQLite store could not be opened or written: names the path."""


class BackendError(SgpoError):
    """A generation backend is missing or failed: names the backend."""


class RewardError(SgpoError):
    """A reward could not be resolved, loaded or called: names the --reward option and the function."""
