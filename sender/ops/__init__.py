"""Watching the system run: structured logs, Prometheus metrics and live status."""
