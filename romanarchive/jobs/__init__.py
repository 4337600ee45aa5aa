"""romanarchive.jobs."""
