"""analytics: stored readings to quota standing and alerts.

Rules are pure numpy functions (``analytics.rules``); ``inputs`` pushes the
aggregations down to the store; ``alerts`` owns the lifecycle; notifiers
deliver the events.
"""
