"""Exact, atomic, verifiable database backups through the Django ORM."""

__version__ = "0.1.0"
