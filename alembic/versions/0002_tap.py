"""TAP: TAP_SCHEMA tables, UWS jobs, the read-only query role; jobs.product_id nullable.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-24 06:30:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

ROLE = "romanarchive_tap"


def _text(name, nullable=True, comment=None):
    return sa.Column(name, sa.Text(), nullable=nullable, comment=comment)


def _int(name, nullable=True, comment=None):
    return sa.Column(name, sa.Integer(), nullable=nullable, comment=comment)


def upgrade() -> None:
    op.alter_column('jobs', 'product_id', existing_type=sa.BigInteger(), nullable=True,
                    comment='Input product (NULL for jobs on no product, e.g. TAP queries)',
                    existing_comment='Input product')
    op.create_table('uws_jobs',
    sa.Column('job_id', sa.String(length=32), nullable=False, comment='UWS job identifier (random, URL-safe)'),
    sa.Column('run_id', sa.Text(), nullable=True, comment='Client-supplied RUNID'),
    sa.Column('owner', sa.Text(), nullable=True, comment='Owner of the job (none: the service is anonymous)'),
    sa.Column('phase', sa.String(length=16), server_default=sa.text("'PENDING'"), nullable=False, comment='UWS phase: PENDING, QUEUED, EXECUTING, COMPLETED, ERROR, ABORTED'),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='TAP parameters (lower-case names)'),
    sa.Column('uploads', postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"), nullable=False, comment='TAP_UPLOAD table name -> object-store key of the uploaded VOTable'),
    sa.Column('creation_time', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the job was created'),
    sa.Column('start_time', sa.DateTime(timezone=True), nullable=True, comment='When execution started'),
    sa.Column('end_time', sa.DateTime(timezone=True), nullable=True, comment='When execution ended'),
    sa.Column('execution_duration', sa.Integer(), nullable=False, comment='Execution time allowed (0: unlimited)'),
    sa.Column('destruction', sa.DateTime(timezone=True), nullable=False, comment='When the job and its results are destroyed'),
    sa.Column('error_summary', sa.Text(), nullable=True, comment='Why the job failed'),
    sa.Column('result_key', sa.Text(), nullable=True, comment='Object-store key of the result'),
    sa.Column('result_media_type', sa.String(length=64), nullable=True, comment='Media type of the result'),
    sa.Column('result_rows', sa.BigInteger(), nullable=True, comment='Rows in the result'),
    sa.Column('overflow', sa.Boolean(), nullable=True, comment='Whether the result was truncated at MAXREC'),
    sa.Column('queue_job_id', sa.BigInteger(), nullable=True, comment='The jobs row that runs it'),
    sa.Column('backend_pid', sa.Integer(), nullable=True, comment='PostgreSQL backend running the query (to cancel it on ABORT)'),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_uws_jobs')),
    comment="Asynchronous TAP queries (UWS 1.1 jobs); a queued one is run through a 'tap_query' row of jobs."
    )
    op.create_index('ix_uws_jobs_creation_time', 'uws_jobs', ['creation_time'], unique=False)
    op.create_index('ix_uws_jobs_destruction', 'uws_jobs', ['destruction'], unique=False)
    op.create_index('ix_uws_jobs_phase', 'uws_jobs', ['phase'], unique=False)
    op.create_index('ix_uws_jobs_queue_job_id', 'uws_jobs', ['queue_job_id'], unique=False)

    # TAP_SCHEMA (TAP 1.1 section 4); its rows are generated from the column registry (romanarchive.tap.schema).
    op.execute("CREATE SCHEMA IF NOT EXISTS tap_schema")
    op.create_table('schemas', _text('schema_name', False), _text('utype'), _text('description'),
                    _int('schema_index'), sa.PrimaryKeyConstraint('schema_name', name='pk_tap_schemas'),
                    schema='tap_schema')
    op.create_table('tables', _text('schema_name', False), _text('table_name', False), _text('table_type', False),
                    _text('utype'), _text('description'), _int('table_index'),
                    sa.PrimaryKeyConstraint('table_name', name='pk_tap_tables'), schema='tap_schema')
    op.create_table('columns', _text('table_name', False), _text('column_name', False), _text('utype'),
                    _text('ucd'), _text('unit'), _text('description'), _text('datatype', False), _text('arraysize'),
                    _text('xtype'), _int('size'), _int('principal', False), _int('indexed', False),
                    _int('std', False), _int('column_index'),
                    sa.PrimaryKeyConstraint('table_name', 'column_name', name='pk_tap_columns'), schema='tap_schema')
    op.create_table('keys', _text('key_id', False), _text('from_table', False), _text('target_table', False),
                    _text('utype'), _text('description'), sa.PrimaryKeyConstraint('key_id', name='pk_tap_keys'),
                    schema='tap_schema')
    op.create_table('key_columns', _text('key_id', False), _text('from_column', False),
                    _text('target_column', False), schema='tap_schema')

    # The role TAP queries run as (SET ROLE inside a READ ONLY transaction): no login, SELECT on published
    # relations only (granted by refresh_tap_schema), TEMP for TAP_UPLOAD tables. Roles are cluster-wide.
    op.execute(f"""
        DO $$ BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                CREATE ROLE {ROLE} NOLOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOINHERIT;
            END IF;
        END $$""")
    op.execute(f"GRANT {ROLE} TO CURRENT_USER")
    op.execute(f"DO $$ BEGIN EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO {ROLE}', current_database()); END $$")
    op.execute(f"REVOKE CREATE ON SCHEMA public FROM {ROLE}")

    from romanarchive.tap.schema import refresh_tap_schema

    refresh_tap_schema(op.get_bind())


def downgrade() -> None:
    op.execute(f"DROP OWNED BY {ROLE}")  # this database's grants to the role (the role itself is cluster-wide)
    for name in ('key_columns', 'keys', 'columns', 'tables', 'schemas'):
        op.drop_table(name, schema='tap_schema')
    op.execute("DROP SCHEMA IF EXISTS tap_schema")
    op.drop_index('ix_uws_jobs_queue_job_id', table_name='uws_jobs')
    op.drop_index('ix_uws_jobs_phase', table_name='uws_jobs')
    op.drop_index('ix_uws_jobs_destruction', table_name='uws_jobs')
    op.drop_index('ix_uws_jobs_creation_time', table_name='uws_jobs')
    op.drop_table('uws_jobs')
    op.execute("DELETE FROM jobs WHERE product_id IS NULL")
    op.alter_column('jobs', 'product_id', existing_type=sa.BigInteger(), nullable=False, comment='Input product',
                    existing_comment='Input product (NULL for jobs on no product, e.g. TAP queries)')
