"""The backup file below its JSON Lines: compression and encryption, and their streams."""
