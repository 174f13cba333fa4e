"""Differential restore: change only the rows that differ from the backup.

``merge`` compares a table of a backup with the database in one streaming merge by
primary key (validation uses it too); ``apply`` finds, inside a restore's
transaction, what each table needs and applies it (``restore.py`` switches per table
between this and reloading the whole table); ``preview`` says what a restore would
change; ``store`` keeps the rows to write in bounded memory. Which fields of a
changed row differ is ``backups_app.changes``, shared with validation.
"""
