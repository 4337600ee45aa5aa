"""romanarchive.store."""
