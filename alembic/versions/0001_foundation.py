"""Foundation: files, exposures, products, reference files, provenance, jobs, ivoa.obscore.

Revision ID: 0001
Revises: 
Create Date: 2026-11-24 05:51:37.693374
"""

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import romanarchive.db.registry
from alembic import op

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


OBSCORE_VIEW = """
CREATE VIEW ivoa.obscore AS
SELECT
    CASE WHEN p.level <= 1 THEN 'cube' ELSE 'image' END::text AS dataproduct_type,
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


def upgrade() -> None:
    # pgsphere and q3c: sky types and indexes (see sql/patch_pgsphere.py for PostgreSQL >= 15.9).
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_sphere")
    op.execute("CREATE EXTENSION IF NOT EXISTS q3c")
    op.execute("CREATE SCHEMA IF NOT EXISTS ivoa")
    op.create_table('archive_settings',
    sa.Column('key', sa.String(length=64), nullable=False, comment='Setting name'),
    sa.Column('value', sa.Text(), nullable=False, comment='Setting value'),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_archive_settings')),
    comment='Key/value settings the database needs (e.g. the public base URL used by ObsCore access_url).'
    )
    op.create_table('exposures',
    sa.Column('exposure_id', sa.BigInteger(), nullable=False, comment='Archive exposure identifier'),
    sa.Column('observation_id', sa.String(length=28), nullable=True, comment='The format of the programmatic observation identifier is "PPPPPCCAAASSSOOOVVVggsaaeee" where "PPPPP" is the program number, "CC" is the execution plan number, "AAA" is the pass number, "SSS" is the segment number, "OOO" is the observation number, "VVV" is the visit number, "gg" is the visit file group, "s" is the visit file sequence, "aa" is the visit file activity, and "eeee" is the exposure numb'),
    sa.Column('visit_id', sa.String(length=19), nullable=True, comment='A unique identifier for a visit. The format is "PPPPPCCAAASSSOOOVVV" where "PPPPP" is the program number, "CC" is the execution plan number, "AAA" is the pass number, "SSS" is the segment number, "OOO" is the observation number, and "VVV" is the visit number.'),
    sa.Column('program', sa.Integer(), nullable=False, comment='Identifier for the observing program. A program is an approved specification for a science, calibration, or engineering investigation to be pursued using Roman Space Telescope mission resources. The allowed range of program numbers is 00001 to 18445 inclusive.'),
    sa.Column('execution_plan', sa.SmallInteger(), nullable=False, comment='Identifier for the execution plan. An execution plan is a version of the complete set of activities for a survey. A survey may include portions of multiple execution plans. A new execution plan is required whenever there is a change in the program. The allowed range of execution plan numbers is 01 to 99 inclusive.'),
    sa.Column('pass', sa.SmallInteger(), nullable=False, comment="Identifier for the pass. A pass is the collection of activities generated from each iteration of a pass plan in the Astronomer's Proposal Tool (APT). Multiple Passes may be generated from the same Pass Plan to allow repetition or execute at different orientations (via special requirements). The allowed range of pass numbers is 001 to 999 inclusive."),
    sa.Column('segment', sa.SmallInteger(), nullable=False, comment="Identifier for the segment. A segment is the sequence of activities produced by each iteration of an Astronomer's Proposal Tool (APT) segment plan in a pass. A segment may include multiple traversals of mosaic pattern(s), with element wheel moves occurring between observations. The allowed range of segment numbers is 001 to 999 inclusive."),
    sa.Column('observation', sa.SmallInteger(), nullable=False, comment='Identifier for the observation. An observation is a single traversal of a mosaic pattern, using a single, constant instrument configuration (i.e., with no element wheel moves). The allowed range of observation numbers is 001 to 999 inclusive.'),
    sa.Column('visit', sa.SmallInteger(), nullable=False, comment='A visit is the smallest scheduling unit for Roman, which is a sequence of exposures executed without interruption, including dither patterns. A visit corresponds to one tile of the selected mosaic pattern. The allowed range of visit numbers is 001 to 999 inclusive.'),
    sa.Column('visit_file_group', sa.SmallInteger(), nullable=False, comment='The visit file group identifies the sequence group within the visit file. The allowed range of visit file group numbers is 01 to 99 inclusive.'),
    sa.Column('visit_file_sequence', sa.SmallInteger(), nullable=False, comment='The visit file sequence identifies the sequence within the visit file group. A value of 1 indicates a prime instrument exposure, and a value greater than 1 indicates a parallel instrument exposure. The allowed range of visit file sequence numbers of 1 to 5 inclusive.'),
    sa.Column('visit_file_activity', sa.String(length=2), nullable=False, comment='The visit file activity number identifies the activity within the visit file sequence. The allowed range of visit file activity numbers is 01 to 99 inclusive.'),
    sa.Column('observation_exposure', sa.Integer(), nullable=False, comment='An exposure is a single multi-accumulation (MA) table sequence of the detector array at a single dither point in the dither pattern. The allowed range of exposure numbers is 0001 to 9999 inclusive.'),
    sa.Column('exposure_type', sa.String(length=25), nullable=True, comment='exposure_type'),
    sa.Column('exposure_start_time', sa.DateTime(), nullable=True, comment='The UTC time at the beginning of the exposure. The time is serialized on disk as an International Organization for Standardization (ISO) 8601-compliant ISOT string, but if opened in Python with the asdf-astropy package installed, it may be read as an astropy.time.Time object with all of the associated methods and transforms available. See the documentation for astropy.time.Time objects for more in'),
    sa.Column('exposure_end_time', sa.DateTime(), nullable=True, comment='The UTC time at the end of the exposure. The time is serialized on disk as an International Organization for Standardization (ISO) 8601-compliant ISOT string, but if opened in Python with the asdf-astropy package installed, it may be read as an astropy.time.Time object with all of the associated methods and transforms available. See the documentation for astropy.time.Time objects for more informat'),
    sa.Column('exposure_time', sa.Double(), nullable=True, comment='The difference in time (in units of seconds) between the start of the first reset/read and end of the last read in the readout pattern.'),
    sa.Column('effective_exposure_time', sa.Double(), nullable=True, comment='The difference in time (in units of seconds) between the midpoints of the first and last science resultants. If either resultant contains only a single read, then the time at the end of the read is used rather than the midpoint time.'),
    sa.Column('exposure_nresultants', sa.Integer(), nullable=True, comment='The number of resultant frames in this exposure that were transmitted to the ground.'),
    sa.Column('ma_table_number', sa.SmallInteger(), nullable=True, comment='A unique identification number for the multi-accumulation (MA) table used for this exposure. The number comes from the Science Operations Center (SOC) Project Reference Database (PRD).'),
    sa.Column('ma_table_name', sa.String(length=50), nullable=True, comment='The name of the multi-accumulation (MA) table used for the exposure. The MA table is also referred to as the readout pattern.'),
    sa.Column('exposure_frame_time', sa.Double(), nullable=True, comment='The readout time in seconds of the Wide Field Instrument (WFI) detectors. This represents the time between the start and end of the readout.'),
    sa.Column('instrument_name', sa.String(length=5), nullable=True, comment='Name of the instrument used to acquire the science data.'),
    sa.Column('detector', sa.String(length=10), nullable=False, comment='Name of the Wide Field Instrument (WFI) detector used to take the science data in this file.'),
    sa.Column('optical_element', sa.String(length=20), nullable=True, comment='Name of the optical element used to take the science data.'),
    sa.Column('ra_v1', sa.Double(), nullable=True, comment='The right ascension coordinate of the V1 axis in units of degrees. This may be considered the right ascension coordinate of the telescope boresight. The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The V1 axis is orthogonal to the primary mirror, parallel to the telescope boresight, and increasing positively through the telescope aperture. See Roman'),
    sa.Column('dec_v1', sa.Double(), nullable=True, comment='The declination coordinate of the V1 axis in units of degrees. This may be considered the declination coordinate of the telescope boresight. The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The +V1 axis is orthogonal to the primary mirror, parallel to the telescope boresight, and increasing positively through the telescope aperture. See Roman-STScI-'),
    sa.Column('pa_v3', sa.Double(), nullable=True, comment='The position angle of the V3 axis (in units of degrees) is defined as the projection of the V3 axis on the sky measured from North to East. The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The +V3 axis is defined to be orthogonal to the sunshield. See Roman-STScI-000143 "Description of the Roman SIAF and Coordinate Frames" for more information.'),
    sa.Column('target_ra', sa.Double(), nullable=True, comment='Right ascension in units of degrees at the location of the target aperture.'),
    sa.Column('target_dec', sa.Double(), nullable=True, comment='Declination in units of degrees at the location of the target aperture.'),
    sa.Column('target_aperture', sa.String(length=100), nullable=True, comment='Name of the aperture used to align the instrument to a position on the sky.'),
    sa.Column('aperture_name', sa.String(length=20), nullable=True, comment='Name of the aperture used to specify the transformations between detector pixel, science pixel, and spacecraft V coordinate frames. This information comes from the Science Instrument Aperture File (SIAF) in the Science Operations Center (SOC) Project Reference Database (PRD).'),
    sa.Column('ra_ref', sa.Double(), nullable=True, comment='Right ascension of the reference pixel position on the sky in units of degrees.'),
    sa.Column('dec_ref', sa.Double(), nullable=True, comment='Declination of the reference pixel position on the sky in units of degrees.'),
    sa.Column('roll_ref', sa.Double(), nullable=True, comment='Position angle of the telescope V3 axis at the reference pixel position measured from North to East. The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The +V3 axis is orthogonal to the sunshield. See Roman-STScI-000143 "Description of the Roman SIAF and Coordinate Frames" for more information.'),
    sa.Column('v2_ref', sa.Double(), nullable=True, comment='Coordinate of the reference pixel position along the telescope V2 axis in units of arcseconds. This information comes from the Science Instrument Aperture File (SIAF) in the Science Operations Center (SOC) Project Reference Database (PRD). The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The +V1 axis is defined as parallel to the telescope boresight'),
    sa.Column('v3_ref', sa.Double(), nullable=True, comment='Coordinate of the reference pixel position along the telescope V3 axis in units of arcseconds. This information comes from the Science Instrument Aperture File (SIAF) in the Science Operations Center (SOC) Project Reference Database (PRD). The telescope V coordinate system is defined with its origin at the vertex of the primary mirror. The +V3 axis is orthogonal to the sunshield. See Roman-STScI-0'),
    sa.Column('program_title', sa.String(length=200), nullable=True, comment='The submitted proposal title of the program.'),
    sa.Column('investigator_name', sa.String(length=100), nullable=True, comment='The name of the principle investigator (PI) of the program.'),
    sa.Column('science_category', sa.String(length=50), nullable=True, comment='The science category assigned during the Time Allocation Committee (TAC) review process.'),
    sa.Column('visit_type', sa.String(length=30), nullable=True, comment='The type of visit from observation planning.'),
    sa.Column('dither_primary_name', sa.String(length=100), nullable=True, comment='Name of the primary dither pattern used for the visit.'),
    sa.Column('mjd_start', sa.Double(), nullable=True, comment='Exposure start (MJD, UTC)'),
    sa.Column('mjd_end', sa.Double(), nullable=True, comment='Exposure end (MJD, UTC)'),
    sa.Column('s_region', romanarchive.db.registry.SPoly(), nullable=True, comment='Sky footprint of the exposure (pgsphere polygon, ICRS)'),
    sa.Column('s_ra', sa.Double(), nullable=True, comment='Right ascension of the exposure centre (ICRS)'),
    sa.Column('s_dec', sa.Double(), nullable=True, comment='Declination of the exposure centre (ICRS)'),
    sa.Column('hpx', sa.BigInteger(), nullable=True, comment='HEALPix nested index, order 29, of the exposure centre'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.PrimaryKeyConstraint('exposure_id', name=op.f('pk_exposures')),
    sa.UniqueConstraint('program', 'execution_plan', 'pass', 'segment', 'observation', 'visit', 'visit_file_group', 'visit_file_sequence', 'visit_file_activity', 'observation_exposure', 'detector', name='uq_exposures_program_execution_plan_pass_segment_observation_vi'),
    comment="One WFI detector exposure (seeded from rad's WFIExposure archive_catalog annotations)."
    )
    op.create_index('ix_exposures_hpx', 'exposures', ['hpx'], unique=False)
    op.create_index('ix_exposures_mjd_start', 'exposures', ['mjd_start'], unique=False)
    op.create_index('ix_exposures_s_region', 'exposures', ['s_region'], unique=False, postgresql_using='gist')
    op.create_table('files',
    sa.Column('file_id', sa.BigInteger(), nullable=False, comment='File identifier'),
    sa.Column('uri', sa.Text(), nullable=False, comment="Key of the object inside the archive's object store"),
    sa.Column('filename', sa.Text(), nullable=False, comment='Original file name'),
    sa.Column('size', sa.BigInteger(), nullable=False, comment='Size of the object'),
    sa.Column('sha256', sa.CHAR(length=64), nullable=False, comment='SHA-256 of the content, hex'),
    sa.Column('media_type', sa.String(length=64), nullable=False, comment='IANA media type'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.PrimaryKeyConstraint('file_id', name=op.f('pk_files')),
    sa.UniqueConstraint('sha256', name='uq_files_sha256'),
    sa.UniqueConstraint('uri', name='uq_files_uri'),
    comment='One stored object in the object store, addressed by content (sha256).'
    )
    op.create_table('products',
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Product identifier'),
    sa.Column('level', sa.SmallInteger(), nullable=False, comment='Roman data level 0-5'),
    sa.Column('product_type', sa.String(length=32), nullable=False, comment='Kind of product, e.g. wfi_l1, wfi_l2, reference'),
    sa.Column('release', sa.String(length=64), server_default=sa.text("'live'"), nullable=False, comment="Data release tag; 'live' until frozen"),
    sa.Column('exposure_id', sa.BigInteger(), nullable=True, comment='Exposure this product belongs to (L1/L2)'),
    sa.Column('file_id', sa.BigInteger(), nullable=False, comment='Stored file'),
    sa.Column('obs_id', sa.Text(), nullable=True, comment='Observation identifier shared by all levels of one exposure'),
    sa.Column('filter', sa.String(length=20), nullable=True, comment='Optical element'),
    sa.Column('detector', sa.String(length=10), nullable=True, comment='WFI detector'),
    sa.Column('t_min', sa.Double(), nullable=True, comment='Start time (MJD)'),
    sa.Column('t_max', sa.Double(), nullable=True, comment='Stop time (MJD)'),
    sa.Column('t_exptime', sa.Double(), nullable=True, comment='Exposure time'),
    sa.Column('em_min', sa.Double(), nullable=True, comment='Bandpass short-wavelength limit'),
    sa.Column('em_max', sa.Double(), nullable=True, comment='Bandpass long-wavelength limit'),
    sa.Column('s_fov', sa.Double(), nullable=True, comment='Diameter of the smallest circle containing the footprint'),
    sa.Column('s_xel1', sa.BigInteger(), nullable=True, comment='Pixels along the first axis'),
    sa.Column('s_xel2', sa.BigInteger(), nullable=True, comment='Pixels along the second axis'),
    sa.Column('s_region', romanarchive.db.registry.SPoly(), nullable=True, comment='Sky footprint of the product (pgsphere polygon, ICRS)'),
    sa.Column('s_ra', sa.Double(), nullable=True, comment='Right ascension of the product centre (ICRS)'),
    sa.Column('s_dec', sa.Double(), nullable=True, comment='Declination of the product centre (ICRS)'),
    sa.Column('hpx', sa.BigInteger(), nullable=True, comment='HEALPix nested index, order 29, of the product centre'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.ForeignKeyConstraint(['exposure_id'], ['exposures.exposure_id'], name=op.f('fk_products_exposure_id'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['file_id'], ['files.file_id'], name=op.f('fk_products_file_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('product_id', name=op.f('pk_products')),
    sa.UniqueConstraint('product_type', 'exposure_id', name='uq_products_product_type_exposure_id'),
    comment='One archived data product of any level (0-5): raw ramps, calibrated images, mosaics, catalogs and community products.'
    )
    op.create_index('ix_products_exposure_id', 'products', ['exposure_id'], unique=False)
    op.create_index('ix_products_hpx', 'products', ['hpx'], unique=False)
    op.create_index('ix_products_level', 'products', ['level'], unique=False)
    op.create_index('ix_products_s_region', 'products', ['s_region'], unique=False, postgresql_using='gist')
    op.create_table('reference_files',
    sa.Column('ref_id', sa.BigInteger(), nullable=False, comment='Reference file identifier'),
    sa.Column('file_id', sa.BigInteger(), nullable=False, comment='Stored reference file'),
    sa.Column('reftype', sa.String(length=32), nullable=False, comment='Reference type (dark, flat, gain, ...)'),
    sa.Column('detector', sa.String(length=10), nullable=False, comment='WFI detector'),
    sa.Column('optical_element', sa.String(length=20), nullable=False, comment='Optical element, or ANY when it does not depend on it'),
    sa.Column('useafter', sa.DateTime(), nullable=False, comment='Valid for exposures starting at or after this time (UTC)'),
    sa.Column('description', sa.Text(), nullable=True, comment="Description from the file's metadata"),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.ForeignKeyConstraint(['file_id'], ['files.file_id'], name=op.f('fk_reference_files_file_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('ref_id', name=op.f('pk_reference_files')),
    sa.UniqueConstraint('reftype', 'detector', 'optical_element', 'useafter', name='uq_reference_files_reftype_detector_optical_element_useafter'),
    comment='Calibration reference files, selected by type, detector, optical element and use-after date.'
    )
    op.create_index('ix_reference_files_reftype', 'reference_files', ['reftype'], unique=False)
    op.create_table('jobs',
    sa.Column('job_id', sa.BigInteger(), nullable=False, comment='Job identifier'),
    sa.Column('kind', sa.String(length=32), nullable=False, comment='What the job does, e.g. calibrate'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Input product'),
    sa.Column('state', sa.String(length=16), server_default=sa.text("'queued'"), nullable=False, comment='queued, running, done or failed'),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False, comment='Times a worker has claimed it'),
    sa.Column('max_attempts', sa.Integer(), server_default=sa.text('3'), nullable=False, comment='Claims allowed before the job fails for good'),
    sa.Column('worker', sa.Text(), nullable=True, comment='Worker holding the lease'),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True, comment='Lease expiry; a running job past it may be claimed again'),
    sa.Column('error', sa.Text(), nullable=True, comment='Last error text'),
    sa.Column('output_product_id', sa.BigInteger(), nullable=True, comment='Product the job made'),
    sa.Column('output_key', sa.Text(), nullable=True, comment='Object-store key the current attempt writes; removed if the attempt dies'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the job was queued'),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True, comment='When the current attempt started'),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True, comment='When it finished'),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_jobs_product_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('job_id', name=op.f('pk_jobs')),
    sa.UniqueConstraint('kind', 'product_id', name='uq_jobs_kind_product_id'),
    comment='Durable processing jobs, claimed by workers with FOR UPDATE SKIP LOCKED and a lease.'
    )
    op.create_index('ix_jobs_state', 'jobs', ['state'], unique=False)
    op.create_table('provenance',
    sa.Column('prov_id', sa.BigInteger(), nullable=False, comment='Provenance record identifier'),
    sa.Column('product_id', sa.BigInteger(), nullable=False, comment='Output product'),
    sa.Column('step', sa.String(length=64), nullable=False, comment='Processing step'),
    sa.Column('software', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Package versions used'),
    sa.Column('parameters', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Step configuration'),
    sa.Column('inputs', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Input products (ids and file names)'),
    sa.Column('reference_files', postgresql.JSONB(astext_type=sa.Text()), nullable=False, comment='Reference files by type'),
    sa.Column('wall_time_s', sa.Double(), nullable=True, comment='Wall time of the step'),
    sa.Column('peak_rss_mb', sa.Double(), nullable=True, comment='Peak resident memory of the step'),
    sa.Column('host', sa.Text(), nullable=True, comment='Worker that ran it'),
    sa.Column('job_id', sa.BigInteger(), nullable=True, comment='Job that ran it'),
    sa.Column('created_at', sa.DateTime(timezone=True), server_default=sa.text('now()'), nullable=False, comment='When the row was written'),
    sa.ForeignKeyConstraint(['product_id'], ['products.product_id'], name=op.f('fk_provenance_product_id'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('prov_id', name=op.f('pk_provenance')),
    comment='How a product was made: step, software versions, parameters, inputs, reference files and cost.'
    )
    op.create_index('ix_provenance_product_id', 'provenance', ['product_id'], unique=False)
    op.execute(OBSCORE_VIEW)
    op.execute("INSERT INTO archive_settings (key, value) VALUES ('base_url', 'http://127.0.0.1:8000')")


def downgrade() -> None:
    op.execute("DROP VIEW IF EXISTS ivoa.obscore")
    op.drop_index('ix_provenance_product_id', table_name='provenance')
    op.drop_table('provenance')
    op.drop_index('ix_jobs_state', table_name='jobs')
    op.drop_table('jobs')
    op.drop_index('ix_reference_files_reftype', table_name='reference_files')
    op.drop_table('reference_files')
    op.drop_index('ix_products_s_region', table_name='products', postgresql_using='gist')
    op.drop_index('ix_products_level', table_name='products')
    op.drop_index('ix_products_hpx', table_name='products')
    op.drop_index('ix_products_exposure_id', table_name='products')
    op.drop_table('products')
    op.drop_table('files')
    op.drop_index('ix_exposures_s_region', table_name='exposures', postgresql_using='gist')
    op.drop_index('ix_exposures_mjd_start', table_name='exposures')
    op.drop_index('ix_exposures_hpx', table_name='exposures')
    op.drop_table('exposures')
    op.drop_table('archive_settings')
