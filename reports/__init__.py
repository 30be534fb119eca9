"""Reports officers hand in (统计报表): monthly, quarterly and annual statistics of a scope, as json, xlsx or pdf.

On top of analytics: the report reads the store's aggregates and analytics' budget, quota standing and
statistics, and never writes.  ``model`` computes every figure once; ``formats`` render them.
"""
