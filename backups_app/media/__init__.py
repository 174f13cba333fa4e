"""Media files: the files FileField and ImageField rows reference, with the backup.

- ``files``: reading, hashing and writing a file of any Django storage, streamed;
- ``blobs``: the content-addressed blobs in the backup storage, one per content;
- ``sources``: which fields (and whole storages) a backup covers, and their storages;
- ``index``: a temporary SQLite file that holds references and digests, so that
  memory stays flat whatever the number of files;
- ``collect``: the backup side (references, blobs, the manifest's entries);
- ``restore``: the restore side (what to put back, then putting it back);
- ``compare``: the validation side (files missing, changed or extra);
- ``collection``: which blobs no kept backup references.

The manifest's format is the backup file's: ``backups_app.fileformat.manifest``.
docs/media.md describes the layout, the guarantees and the limits.
"""
