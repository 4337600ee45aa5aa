"""Pure array science shared by the processing domains (no database, no jobs)."""
