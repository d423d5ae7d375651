"""Watching the system run: structured logs, Prometheus metrics, live status, and the
garbage-collector controls that worker processes opt into."""
