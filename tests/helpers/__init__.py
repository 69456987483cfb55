"""Helpers shared by several test modules (never import one test module from another)."""
