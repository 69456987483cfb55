"""Monitoring deployed models: periods against the go-live baseline, drift, new scanners, alerts."""
