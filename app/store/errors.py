"""Errors the store raises with a message a user can act on."""


class StoreError(RuntimeError):
    """A database problem explained in one line (Chinese / English) that names the fix."""
