"""Shared test helpers (imported by tests, never from another test file)."""
