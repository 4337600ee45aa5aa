"""romanarchive.sky."""
