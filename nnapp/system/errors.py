"""Errors whose message is one sentence for the user; importable without torch."""


class DataError(RuntimeError):
    """A data set that cannot be loaded."""


class StoreError(RuntimeError):
    """A run that cannot be read: missing, or with corrupted weights."""


class BundleError(ValueError):
    """An exported run that cannot be written, or a bundle that cannot be imported: the message says what does not match."""
