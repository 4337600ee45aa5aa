"""DIA objects (detections associated across epochs, linked to static counterparts); forced_phot.flux is NULL for
extended objects (their light curves use flux_ap).

Existing dia_sources rows get a NULL dia_object_id; the next DIA run of their skycell and filter associates them
(or run ``romanarchive diff --all --full``).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 15:40:00.000000
"""

import sqlalchemy as sa

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None

_FLUX = 'Total flux from a linear PSF fit (flux and local sky) at the fixed catalog position'


def upgrade() -> None:
    op.create_table('dia_objects',
    sa.Column('dia_object_id', sa.BigInteger(), nullable=False, comment='DIA object identifier'),
    sa.Column('ra', sa.Double(), nullable=False, comment='Right ascension: S/N-weighted mean of the detections (ICRS)'),
    sa.Column('dec', sa.Double(), nullable=False, comment='Declination: S/N-weighted mean of the detections (ICRS)'),
    sa.Column('pos', SPoint(), nullable=False, comment='Position as a pgsphere point (indexed)'),
    sa.Column('n_detections', sa.Integer(), nullable=False, comment='DIA detections associated'),
    sa.Column('n_epochs', sa.Integer(), nullable=False, comment='Distinct epochs (filter, mjd) with a detection'),
    sa.Column('filters', sa.String(length=64), nullable=True, comment='Filters with a detection, comma-separated'),
    sa.Column('first_mjd', sa.Double(), nullable=True, comment='First detection'),
    sa.Column('last_mjd', sa.Double(), nullable=True, comment='Last detection'),
    sa.Column('max_abs_snr', sa.Double(), nullable=True, comment='Largest |S/N| of its detections'),
    sa.Column('max_flux', sa.Double(), nullable=True, comment='Largest difference flux (brightest epoch against its template)'),
    sa.Column('min_flux', sa.Double(), nullable=True, comment='Smallest difference flux (faintest epoch against its template)'),
    sa.Column('counterpart_id', sa.BigInteger(), nullable=True, comment='Static counterpart (objects.source_id, live release): the nearest object within 0.3 arcsec, else the nearest extended object within 2 arcsec (a host), else NULL'),
    sa.Column('counterpart_sep', sa.Double(), nullable=True, comment="Offset from the counterpart (a transient's host offset)"),
    sa.Column('counterpart_extended', sa.Boolean(), nullable=True, comment='Counterpart is extended (a galaxy: the host of a transient or AGN)'),
    sa.Column('updated_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the object was last updated'),
    sa.PrimaryKeyConstraint('dia_object_id', name=op.f('pk_dia_objects')),
    comment='Difference-imaging objects: the DIA detections of one sky position associated across epochs and filters (within 0.3 arcsec), each linked to its static-catalog counterpart (the variable star itself, or the host galaxy of a transient with its offset) where one exists. Light curve: dia_sources with this dia_object_id.'
    )
    op.create_index('ix_dia_objects_pos', 'dia_objects', ['pos'], unique=False, postgresql_using='gist')
    op.add_column('dia_sources', sa.Column('dia_object_id', sa.BigInteger(), nullable=True,
                                           comment='DIA object the detection belongs to (dia_objects.dia_object_id)'))
    op.create_index('ix_dia_sources_dia_object_id', 'dia_sources', ['dia_object_id'], unique=False)
    op.alter_column('forced_phot', 'flux', existing_type=sa.Double(), existing_nullable=True,
                    comment=_FLUX + '; NULL for extended objects (use flux_ap)', existing_comment=_FLUX)


def downgrade() -> None:
    op.alter_column('forced_phot', 'flux', existing_type=sa.Double(), existing_nullable=True, comment=_FLUX,
                    existing_comment=_FLUX + '; NULL for extended objects (use flux_ap)')
    op.drop_index('ix_dia_sources_dia_object_id', table_name='dia_sources')
    op.drop_column('dia_sources', 'dia_object_id')
    op.drop_index('ix_dia_objects_pos', table_name='dia_objects', postgresql_using='gist')
    op.drop_table('dia_objects')
