"""The archive's web service (TAP, cone search, downloads): ``romanarchive serve``."""
