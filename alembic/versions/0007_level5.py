"""Level 5 community products: teams, tokens, submissions, audit.

Also creates the ``level5`` schema that holds one table per published catalog version (created at run time by
``romanarchive.level5.publish``, outside Alembic by design: alembic/env.py compares the public schema only), and
lets the TAP query role read it.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24 08:20:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

ROLE = "romanarchive_tap"

# ivoa.obscore as in 0001, except that Level 5 catalogs are 'measurements' (ObsCore 1.1 dataproduct_type).
OBSCORE_VIEW = """
CREATE OR REPLACE VIEW ivoa.obscore AS
SELECT
    CASE WHEN p.level <= 1 THEN 'cube' WHEN p.product_type = 'l5_catalog' THEN 'measurements' ELSE 'image' END::text
        AS dataproduct_type,
    LEAST(p.level, 4)::smallint AS calib_level,
    'ROMAN'::text AS obs_collection,
    p.obs_id AS obs_id,
    'ivo://romanarchive/product?' || p.product_id AS obs_publisher_did,
    COALESCE((SELECT value FROM archive_settings WHERE key = 'base_url'), 'http://127.0.0.1:8000')
        || '/files/' || p.product_id AS access_url,
    f.media_type::text AS access_format,
    ((f.size + 1023) / 1024)::bigint AS access_estsize,
    NULL::text AS target_name,
    p.s_ra AS s_ra,
    p.s_dec AS s_dec,
    p.s_fov AS s_fov,
    p.s_region AS s_region,
    NULL::double precision AS s_resolution,
    p.s_xel1 AS s_xel1,
    p.s_xel2 AS s_xel2,
    CASE WHEN p.level <= 1 THEN NULL ELSE 1 END::bigint AS t_xel,
    p.t_min AS t_min,
    p.t_max AS t_max,
    p.t_exptime AS t_exptime,
    p.t_exptime AS t_resolution,
    1::bigint AS em_xel,
    p.em_min AS em_min,
    p.em_max AS em_max,
    (p.em_min + p.em_max) / 2 / NULLIF(p.em_max - p.em_min, 0) AS em_res_power,
    'phot.flux.density'::text AS o_ucd,
    NULL::text AS pol_states,
    NULL::bigint AS pol_xel,
    'Roman'::text AS facility_name,
    'WFI'::text AS instrument_name,
    p.product_id AS product_id,
    p.level AS level,
    p.filter::text AS filter,
    p.detector::text AS detector,
    p.release::text AS release
FROM products p JOIN files f ON f.file_id = p.file_id
"""
_DPTYPE_0001 = "CASE WHEN p.level <= 1 THEN 'cube' ELSE 'image' END::text AS dataproduct_type,"
_DPTYPE_0007 = ("CASE WHEN p.level <= 1 THEN 'cube' WHEN p.product_type = 'l5_catalog' THEN 'measurements' "
                "ELSE 'image' END::text\n        AS dataproduct_type,")


def _created():
    return sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
                     comment='When the row was written')


def upgrade() -> None:
    op.create_table('level5_teams',
    sa.Column('team_id', sa.BigInteger(), nullable=False, comment='Team identifier'),
    sa.Column('name', sa.String(length=32), nullable=False, comment='Team name (lower-case identifier)'),
    _created(),
    sa.PrimaryKeyConstraint('team_id', name=op.f('pk_level5_teams')),
    sa.UniqueConstraint('name', name='uq_level5_teams_name'),
    comment='Science teams allowed to submit Level 5 community products.'
    )
    op.create_table('level5_tokens',
    sa.Column('token_id', sa.BigInteger(), nullable=False, comment='Token identifier'),
    sa.Column('team_id', sa.BigInteger(), nullable=False, comment='Team the token acts for'),
    sa.Column('token_sha256', sa.CHAR(length=64), nullable=False, comment='SHA-256 of the token, hex'),
    sa.Column('prefix', sa.String(length=16), nullable=False, comment='First characters of the token, to tell tokens apart'),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True, comment='When the token was revoked (NULL: valid)'),
    _created(),
    sa.ForeignKeyConstraint(['team_id'], ['level5_teams.team_id'], name=op.f('fk_level5_tokens_team_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('token_id', name=op.f('pk_level5_tokens')),
    sa.UniqueConstraint('token_sha256', name='uq_level5_tokens_token_sha256'),
    comment='Bearer tokens of the teams, stored as SHA-256 digests (the token itself is shown once, at creation).'
    )
    op.create_index('ix_level5_tokens_team_id', 'level5_tokens', ['team_id'], unique=False)
    op.create_table('level5_submissions',
    sa.Column('submission_id', sa.BigInteger(), nullable=False, comment='Submission identifier'),
    sa.Column('team_id', sa.BigInteger(), nullable=False, comment='Submitting team'),
    sa.Column('product_name', sa.Text(), nullable=True, comment='Product name the submission claims (NULL when unreadable)'),
    sa.Column('state', sa.String(length=16), server_default=sa.text("'received'"), nullable=False, comment='received, rejected, published or failed'),
    sa.Column('filenames', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Uploaded file names, as sent'),
    sa.Column('report', postgresql.JSONB(astext_type=sa.Text()), nullable=True, comment='Validation report: {valid, errors: [{location, message, code}]}'),
    sa.Column('version_id', sa.BigInteger(), nullable=True, comment='Published version (when published)'),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True, comment='When the outcome was decided'),
    _created(),
    sa.ForeignKeyConstraint(['team_id'], ['level5_teams.team_id'], name=op.f('fk_level5_submissions_team_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('submission_id', name=op.f('pk_level5_submissions')),
    comment='Every Level 5 submission received, with its outcome and validation report.'
    )
    op.create_index('ix_level5_submissions_team_id', 'level5_submissions', ['team_id'], unique=False)
    op.create_table('level5_versions',
    sa.Column('version_id', sa.BigInteger(), nullable=False, comment='Version identifier'),
    sa.Column('name', sa.String(length=40), nullable=False, comment='Product name (lower-case identifier, owned by one team)'),
    sa.Column('version', sa.Integer(), nullable=False, comment='Version number, 1 for the first accepted submission'),
    sa.Column('team_id', sa.BigInteger(), nullable=False, comment='Owning team'),
    sa.Column('submission_id', sa.BigInteger(), nullable=False, comment='Submission it came from'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Registry product'),
    sa.Column('kind', sa.String(length=16), nullable=False, comment='catalog or asdf'),
    sa.Column('table_name', sa.Text(), nullable=True, comment='PostgreSQL table (level5 schema) holding the catalog rows'),
    sa.Column('description', sa.Text(), nullable=True, comment='What one row of the catalog is'),
    sa.Column('ra_column', sa.Text(), nullable=True, comment='Right ascension column (q3c-indexed)'),
    sa.Column('dec_column', sa.Text(), nullable=True, comment='Declination column (q3c-indexed)'),
    sa.Column('n_rows', sa.BigInteger(), nullable=True, comment='Catalog rows'),
    sa.Column('file_ids', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Every stored file of the version (data and sidecar)'),
    sa.Column('ccsp', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='The CCSP metadata block, as submitted'),
    _created(),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_level5_versions_product_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['submission_id'], ['level5_submissions.submission_id'], name=op.f('fk_level5_versions_submission_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['team_id'], ['level5_teams.team_id'], name=op.f('fk_level5_versions_team_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('version_id', name=op.f('pk_level5_versions')),
    sa.UniqueConstraint('name', 'version', name='uq_level5_versions_name_version'),
    comment='Published versions of Level 5 products: one row per accepted submission; earlier versions stay queryable.'
    )
    op.create_table('level5_columns',
    sa.Column('table_name', sa.Text(), nullable=False, comment='PostgreSQL table, schema-qualified'),
    sa.Column('column_name', sa.Text(), nullable=False, comment='Column name'),
    sa.Column('position', sa.Integer(), nullable=False, comment='Order of the column in the table'),
    sa.Column('type', sa.String(length=16), nullable=False, comment='Logical type of the column registry'),
    sa.Column('unit', sa.Text(), server_default=sa.text("''"), nullable=False, comment='VOUnit'),
    sa.Column('ucd', sa.Text(), server_default=sa.text("''"), nullable=False, comment='UCD1+'),
    sa.Column('description', sa.Text(), nullable=False, comment='What the column holds'),
    sa.Column('nullable', sa.Boolean(), nullable=False, comment='Whether NULL is allowed'),
    sa.Column('primary_key', sa.Boolean(), nullable=False, comment='Part of the primary key'),
    sa.Column('indexed', sa.Boolean(), nullable=False, comment='Has an index'),
    sa.PrimaryKeyConstraint('table_name', 'column_name', name=op.f('pk_level5_columns')),
    comment='Column registry of the published Level 5 catalog tables (what TAP_SCHEMA and VOTable FIELDs show).'
    )
    op.create_table('level5_audit',
    sa.Column('audit_id', sa.BigInteger(), nullable=False, comment='Entry identifier'),
    sa.Column('at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When'),
    sa.Column('team', sa.Text(), nullable=True, comment='Team name (NULL when the caller could not be identified)'),
    sa.Column('action', sa.String(length=32), nullable=False, comment='submit, token_create, ...'),
    sa.Column('submission_id', sa.BigInteger(), nullable=True, comment='Submission concerned'),
    sa.Column('product_name', sa.Text(), nullable=True, comment='Product concerned'),
    sa.Column('outcome', sa.String(length=16), nullable=False, comment='published, rejected, refused, failed, ok'),
    sa.Column('detail', sa.Text(), nullable=True, comment='Short explanation'),
    sa.Column('client', sa.Text(), nullable=True, comment='Client address'),
    sa.PrimaryKeyConstraint('audit_id', name=op.f('pk_level5_audit')),
    comment='Audit log of Level 5 actions: who did what, when, and the outcome.'
    )
    op.create_index('ix_level5_audit_at', 'level5_audit', ['at'], unique=False)
    # One table per published catalog version lives here; the TAP query role may read what is published in it.
    op.execute("CREATE SCHEMA IF NOT EXISTS level5")
    op.execute(f"GRANT USAGE ON SCHEMA level5 TO {ROLE}")
    op.execute(OBSCORE_VIEW)


def downgrade() -> None:
    op.execute(OBSCORE_VIEW.replace(_DPTYPE_0007, _DPTYPE_0001))
    op.execute("DROP SCHEMA IF EXISTS level5 CASCADE")
    op.drop_index('ix_level5_audit_at', table_name='level5_audit')
    op.drop_table('level5_audit')
    op.drop_table('level5_columns')
    op.drop_table('level5_versions')
    op.drop_index('ix_level5_submissions_team_id', table_name='level5_submissions')
    op.drop_table('level5_submissions')
    op.drop_index('ix_level5_tokens_team_id', table_name='level5_tokens')
    op.drop_table('level5_tokens')
    op.drop_table('level5_teams')
    # Level 5 products and their files rows go with them (their stored objects are the store's to collect).
    op.execute("DELETE FROM products WHERE level = 5")
