"""Level 5 community products: teams, tokens, submissions, published versions and their audit log.

A team submits a product (an ASDF file or a catalog with its sidecar); each accepted submission becomes a new
*version* (``level5_versions``) with its own products row and, for catalogs, its own table in the ``level5``
PostgreSQL schema, whose columns are described in ``level5_columns`` (from there TAP_SCHEMA and the TAP query
catalog pick them up at run time). Tokens are stored as SHA-256 digests only.
"""

from __future__ import annotations

from romanarchive.db.registry import ColumnSpec, TableSpec

C = ColumnSpec

_CREATED = C("created_at", "timestamptz", "When the row was written", ucd="time.creation", nullable=False,
             server_default="now()")

LEVEL5_TEAMS = TableSpec(
    "level5_teams",
    "Science teams allowed to submit Level 5 community products.",
    (
        C("team_id", "bigint", "Team identifier", ucd="meta.id", primary_key=True),
        C("name", "varchar(32)", "Team name (lower-case identifier)", ucd="meta.id", nullable=False),
        _CREATED,
    ),
    unique=(("name",),),
)

LEVEL5_TOKENS = TableSpec(
    "level5_tokens",
    "Bearer tokens of the teams, stored as SHA-256 digests (the token itself is shown once, at creation).",
    (
        C("token_id", "bigint", "Token identifier", ucd="meta.id", primary_key=True),
        C("team_id", "bigint", "Team the token acts for", ucd="meta.id", foreign_key="level5_teams.team_id",
          nullable=False, indexed=True),
        C("token_sha256", "char(64)", "SHA-256 of the token, hex", ucd="meta.checksum", nullable=False),
        C("prefix", "varchar(16)", "First characters of the token, to tell tokens apart", ucd="meta.id",
          nullable=False),
        C("revoked_at", "timestamptz", "When the token was revoked (NULL: valid)", ucd="time.end"),
        _CREATED,
    ),
    unique=(("token_sha256",),),
)

LEVEL5_SUBMISSIONS = TableSpec(
    "level5_submissions",
    "Every Level 5 submission received, with its outcome and validation report.",
    (
        C("submission_id", "bigint", "Submission identifier", ucd="meta.id", primary_key=True),
        C("team_id", "bigint", "Submitting team", ucd="meta.id", foreign_key="level5_teams.team_id",
          nullable=False, indexed=True),
        C("product_name", "text", "Product name the submission claims (NULL when unreadable)", ucd="meta.id"),
        C("state", "varchar(16)", "received, rejected, published or failed", ucd="meta.code.status",
          nullable=False, server_default="'received'"),
        C("filenames", "jsonb", "Uploaded file names, as sent", ucd="meta.id;meta.file", nullable=False),
        C("report", "jsonb", "Validation report: {valid, errors: [{location, message, code}]}", ucd="meta.note"),
        C("version_id", "bigint", "Published version (when published)", ucd="meta.id"),
        C("finished_at", "timestamptz", "When the outcome was decided", ucd="time.end"),
        _CREATED,
    ),
)

LEVEL5_VERSIONS = TableSpec(
    "level5_versions",
    "Published versions of Level 5 products: one row per accepted submission; earlier versions stay queryable.",
    (
        C("version_id", "bigint", "Version identifier", ucd="meta.id", primary_key=True),
        C("name", "varchar(40)", "Product name (lower-case identifier, owned by one team)", ucd="meta.id",
          nullable=False),
        C("version", "integer", "Version number, 1 for the first accepted submission", ucd="meta.version",
          nullable=False),
        C("team_id", "bigint", "Owning team", ucd="meta.id", foreign_key="level5_teams.team_id", nullable=False),
        C("submission_id", "bigint", "Submission it came from", ucd="meta.id",
          foreign_key="level5_submissions.submission_id", nullable=False),
        C("product_id", "bigint", "Registry product", ucd="meta.id", foreign_key="products.product_id",
          nullable=False),
        C("kind", "varchar(16)", "catalog or asdf", ucd="meta.code.class", nullable=False),
        C("table_name", "text", "PostgreSQL table (level5 schema) holding the catalog rows", ucd="meta.id"),
        C("description", "text", "What one row of the catalog is", ucd="meta.note"),
        C("ra_column", "text", "Right ascension column (q3c-indexed)", ucd="meta.id"),
        C("dec_column", "text", "Declination column (q3c-indexed)", ucd="meta.id"),
        C("n_rows", "bigint", "Catalog rows", ucd="meta.number"),
        C("file_ids", "jsonb", "Every stored file of the version (data and sidecar)", ucd="meta.id",
          nullable=False),
        C("ccsp", "jsonb", "The CCSP metadata block, as submitted", ucd="meta.note", nullable=False),
        _CREATED,
    ),
    unique=(("name", "version"),),
)

LEVEL5_COLUMNS = TableSpec(
    "level5_columns",
    "Column registry of the published Level 5 catalog tables (what TAP_SCHEMA and VOTable FIELDs show).",
    (
        C("table_name", "text", "PostgreSQL table, schema-qualified", ucd="meta.id", primary_key=True),
        C("column_name", "text", "Column name", ucd="meta.id", primary_key=True),
        C("position", "integer", "Order of the column in the table", ucd="meta.number", nullable=False),
        C("type", "varchar(16)", "Logical type of the column registry", ucd="meta.code", nullable=False),
        C("unit", "text", "VOUnit", ucd="meta.unit", nullable=False, server_default="''"),
        C("ucd", "text", "UCD1+", ucd="meta.ucd", nullable=False, server_default="''"),
        C("description", "text", "What the column holds", ucd="meta.note", nullable=False),
        C("nullable", "boolean", "Whether NULL is allowed", ucd="meta.code", nullable=False),
        C("primary_key", "boolean", "Part of the primary key", ucd="meta.code", nullable=False),
        C("indexed", "boolean", "Has an index", ucd="meta.code", nullable=False),
    ),
)

LEVEL5_AUDIT = TableSpec(
    "level5_audit",
    "Audit log of Level 5 actions: who did what, when, and the outcome.",
    (
        C("audit_id", "bigint", "Entry identifier", ucd="meta.id", primary_key=True),
        C("at", "timestamptz", "When", ucd="time.epoch", nullable=False, server_default="now()", indexed=True),
        C("team", "text", "Team name (NULL when the caller could not be identified)", ucd="meta.id"),
        C("action", "varchar(32)", "submit, token_create, ...", ucd="meta.code", nullable=False),
        C("submission_id", "bigint", "Submission concerned", ucd="meta.id"),
        C("product_name", "text", "Product concerned", ucd="meta.id"),
        C("outcome", "varchar(16)", "published, rejected, refused, failed, ok", ucd="meta.code.status",
          nullable=False),
        C("detail", "text", "Short explanation", ucd="meta.note"),
        C("client", "text", "Client address", ucd="meta.id"),
    ),
)

TABLES: tuple[TableSpec, ...] = (
    LEVEL5_TEAMS, LEVEL5_TOKENS, LEVEL5_SUBMISSIONS, LEVEL5_VERSIONS, LEVEL5_COLUMNS, LEVEL5_AUDIT,
)
