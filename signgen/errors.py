"""User-facing errors: the CLIs print these as one line and exit non-zero.

Anything else that escapes is a bug in signgen and keeps its traceback.
"""


class SignGenError(Exception):
    """Base of every error caused by the user's input, files or configuration."""


class ConfigError(SignGenError, ValueError):
    """A config file or override is unknown, mistyped or out of range."""


class BodyModelError(SignGenError):
    """A body-model file is missing or malformed."""


class InvalidInputError(SignGenError, ValueError):
    """An array or tensor passed to signgen has the wrong shape, type or values."""


class ModelLoadError(SignGenError):
    """A saved model folder is missing, incomplete, corrupt or of another kind."""


class DataError(SignGenError):
    """A dataset, video or array file is missing, truncated or corrupt."""
