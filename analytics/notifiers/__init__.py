"""Notifiers deliver alert events.  Adding a channel = one module implementing ``Notifier``."""
