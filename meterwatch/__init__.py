"""meterwatch: shared core (settings, registry, store, identifiers, command line).

The data path lives in the sibling packages ``collector``, ``analytics``,
``dashboards`` and ``simulators``; this package holds what all of them share.
"""

__version__ = "0.1.0"
