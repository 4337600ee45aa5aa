"""Table Access Protocol (TAP) service: ADQL translation, table metadata and query execution."""
