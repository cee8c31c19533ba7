"""Files: atomic outputs, tables in several formats, the cache folder."""
