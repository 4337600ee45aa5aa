"""romanarchive.db."""
