"""romanarchive.calib."""
