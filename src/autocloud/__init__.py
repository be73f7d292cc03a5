"""Autocloud: an open automotive cloud."""

__version__ = "0.1.0"
