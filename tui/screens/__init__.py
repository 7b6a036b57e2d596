"""Screens of the always-on TUI: the four main modes plus documents, dialogs and help."""
