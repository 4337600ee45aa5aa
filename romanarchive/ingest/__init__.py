"""romanarchive.ingest."""
