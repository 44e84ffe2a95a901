"""Errors the store raises with a message a user can act on."""


class StoreError(RuntimeError):
    """A database problem explained in one line (Chinese / English) that names the fix."""


class StoreBusy(StoreError):
    """Another process holds a lock this one waited for in vain; trying again later will do."""

    def __init__(self, zh: str, en: str):
        super().__init__(f"{zh} / {en}")
        self.zh, self.en = zh, en
