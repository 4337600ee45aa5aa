"""The empirical PSF library: one epsf row per ePSF (a focal-plane grid point of one wfi_epsf library product).

The table starts empty; ``romanarchive epsf build`` or the ``epsf`` job fills it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 22:50:35.896611
"""

import sqlalchemy as sa

from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('epsf',
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Library product holding the ePSF (products.product_id)'),
    sa.Column('position', sa.SmallInteger(), nullable=False, comment="Index of the grid point in the product's EpsfRefModel (psf[0, 0, position])"),
    sa.Column('detector', sa.String(length=8), nullable=False, comment='WFI detector (WFI01..WFI18)'),
    sa.Column('filter', sa.String(length=20), nullable=False, comment='Optical element'),
    sa.Column('x', sa.Double(), nullable=False, comment='Detector column of the grid point (0-based pixel of the L2 image)'),
    sa.Column('y', sa.Double(), nullable=False, comment='Detector row of the grid point (0-based pixel of the L2 image)'),
    sa.Column('v2', sa.Double(), nullable=True, comment='Field position of the grid point: V2 of the telescope frame (NULL when unknown)'),
    sa.Column('v3', sa.Double(), nullable=True, comment='Field position of the grid point: V3 of the telescope frame (NULL when unknown)'),
    sa.Column('t_min', sa.Double(), nullable=False, comment='Start of the time window the ePSF applies to (MJD)'),
    sa.Column('t_max', sa.Double(), nullable=False, comment='End of the time window the ePSF applies to (MJD)'),
    sa.Column('oversample', sa.SmallInteger(), nullable=False, comment='Fine samples per native pixel along each axis'),
    sa.Column('stamp_size', sa.SmallInteger(), nullable=False, comment='Side of the stamp in fine samples (odd)'),
    sa.Column('n_images', sa.Integer(), nullable=False, comment='L2 images the stars came from'),
    sa.Column('n_stars', sa.Integer(), nullable=False, comment='Star images used in the fit (after rejection)'),
    sa.Column('n_rejected', sa.Integer(), nullable=False, comment='Candidate star images rejected by the fit (outliers, neighbours, galaxies)'),
    sa.Column('snr', sa.Double(), nullable=True, comment='Combined signal-to-noise ratio of the stars used (quadrature sum)'),
    sa.Column('fwhm', sa.Double(), nullable=True, comment='FWHM of the ePSF (mean of the major and minor axes)'),
    sa.Column('residual_rms', sa.Double(), nullable=True, comment='Median over the stars used of the RMS of (star - fitted ePSF) within 3 pix, as a fraction of the fitted peak'),
    sa.Column('norm_fraction', sa.Double(), nullable=True, comment="Share of the total flux inside r = 4 pix (the model PSF's encircled energy), to which the ePSF's core is scaled so that PSF fits give total fluxes"),
    sa.Column('temperature', sa.Double(), nullable=True, comment='Detector temperature (engineering key; NULL until known)'),
    sa.Column('jitter', sa.Double(), nullable=True, comment='RMS pointing jitter during the inputs (engineering key; NULL until known)'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the ePSF was registered'),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_epsf_product_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', 'position', name=op.f('pk_epsf')),
    comment='Empirical PSF library: one row per ePSF (a grid point of the detector of one library product), built from isolated stars on dithered L2 images of one detector, filter and time window.'
    )
    op.create_index('ix_epsf_detector', 'epsf', ['detector'], unique=False)
    op.create_index('ix_epsf_t_min', 'epsf', ['t_min'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_epsf_t_min', table_name='epsf')
    op.drop_index('ix_epsf_detector', table_name='epsf')
    op.drop_table('epsf')
