"""Differential restore: change only the rows that differ from the backup.

``merge`` compares a table of a backup with the database in one streaming merge by
primary key (validation uses it too); ``fields`` says which values of a row differ;
``changes`` finds, inside a restore's transaction, what each table needs and applies
it (``restore.py`` switches per table between this and reloading the whole table).
"""
