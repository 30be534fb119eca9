"""Store errors say whether retrying can help."""


class StoreError(Exception):
    """Base of store failures."""


class TransientStoreError(StoreError):
    """The store is down, slow or overloaded: retry later, the data is fine."""


class PermanentStoreError(StoreError):
    """The store refused the data itself (bad request): retrying will not help."""
