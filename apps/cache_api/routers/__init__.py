"""Routers per area: ``github_stats`` (the data) and ``ops`` (probes and metrics)."""
