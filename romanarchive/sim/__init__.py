"""romanarchive.sim."""
