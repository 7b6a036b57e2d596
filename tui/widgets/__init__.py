"""Reusable widgets of the always-on TUI."""
