"""ADQL UDFs ivo_epoch_prop and ivo_epoch_prop_pos (IVOA UDF catalogue): rigorous epoch propagation in SQL.

pgsphere 1.2.0 has no epoch propagation, so both are plain SQL functions. The formalism is the "rigorous
treatment" of the Hipparcos catalogue (ESA SP-1200 vol. 1 sect. 1.5.5) as written in Butkevich & Lindegren (2014)
and the Gaia documentation: linear motion of star and Sun, no light-time or relativistic terms.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-24 07:30:00.000000
"""

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

ROLE = "romanarchive_tap"  # the TAP query role created by migration 0002 (romanarchive.tap.schema.QUERY_ROLE)

ARGS = ("ra double precision, \"dec\" double precision, parallax double precision, pmra double precision, "
        "pmdec double precision, radial_velocity double precision, ref_epoch double precision, "
        "out_epoch double precision")
TYPES = "(" + ", ".join(["double precision"] * 8) + ")"

EPOCH_PROP = f"""
CREATE FUNCTION ivo_epoch_prop({ARGS}) RETURNS double precision[]
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $body$
DECLARE
    mas CONSTANT double precision := pi() / 648000000.0;  -- one milliarcsecond in radians
    au CONSTANT double precision := 4.740470446;  -- A: one au per Julian year in km/s
    plx double precision := coalesce(parallax, 0.0);
    rv double precision := coalesce(radial_velocity, 0.0);
    t double precision;
    sa double precision; ca double precision; sd double precision; cd double precision;
    mra double precision; mdec double precision;
    m0x double precision; m0y double precision; m0z double precision;
    mu2 double precision; z0 double precision; w double precision; d double precision;
    f double precision; f3 double precision;
    ux double precision; uy double precision; uz double precision;
    mx double precision; my double precision; mz double precision;
    z double precision; plx1 double precision; rv1 double precision;
    a1 double precision; d1 double precision;
BEGIN
    IF ra IS NULL OR "dec" IS NULL OR pmra IS NULL OR pmdec IS NULL OR ref_epoch IS NULL OR out_epoch IS NULL THEN
        RETURN NULL;
    END IF;
    t := out_epoch - ref_epoch;  -- Julian years
    sa := sin(radians(ra)); ca := cos(radians(ra));
    sd := sin(radians("dec")); cd := cos(radians("dec"));
    -- p = (-sa, ca, 0), q = (-sd ca, -sd sa, cd), r = (cd ca, cd sa, sd); mu0 = p pmra + q pmdec (rad/yr)
    mra := pmra * mas;
    mdec := pmdec * mas;
    m0x := -sa * mra - sd * ca * mdec;
    m0y := ca * mra - sd * sa * mdec;
    m0z := cd * mdec;
    mu2 := mra * mra + mdec * mdec;
    z0 := rv * plx / au * mas;  -- radial proper motion zeta0 (rad/yr)
    w := 1.0 + z0 * t;
    d := 1.0 + 2.0 * z0 * t + (mu2 + z0 * z0) * t * t;
    IF d <= 0.0 THEN
        RETURN NULL;  -- the star would pass through the solar system barycentre
    END IF;
    f := 1.0 / sqrt(d);
    f3 := f * f * f;
    ux := (cd * ca * w + m0x * t) * f;
    uy := (cd * sa * w + m0y * t) * f;
    uz := (sd * w + m0z * t) * f;
    mx := (m0x * w - cd * ca * mu2 * t) * f3;
    my := (m0y * w - cd * sa * mu2 * t) * f3;
    mz := (m0z * w - sd * mu2 * t) * f3;
    z := (z0 + (mu2 + z0 * z0) * t) * f * f;
    plx1 := plx * f;
    rv1 := CASE WHEN plx1 = 0.0 THEN rv ELSE z / mas * au / plx1 END;
    a1 := atan2(uy, ux);
    d1 := atan2(uz, sqrt(ux * ux + uy * uy));
    sa := sin(a1); ca := cos(a1); sd := sin(d1); cd := cos(d1);
    a1 := degrees(a1);
    IF a1 < 0.0 THEN
        a1 := a1 + 360.0;
    END IF;
    IF a1 >= 360.0 THEN
        a1 := a1 - 360.0;
    END IF;
    RETURN ARRAY[a1, degrees(d1), plx1, (-sa * mx + ca * my) / mas,
                 (-sd * ca * mx - sd * sa * my + cd * mz) / mas, rv1];
END
$body$"""

EPOCH_PROP_POS = f"""
CREATE FUNCTION ivo_epoch_prop_pos({ARGS}) RETURNS spoint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
BEGIN ATOMIC
    SELECT spoint(radians(v[1]), radians(v[2]))
    FROM (SELECT ivo_epoch_prop(ra, "dec", parallax, pmra, pmdec, radial_velocity, ref_epoch, out_epoch) AS v) s;
END"""

_NULLS = ("NULL parallax or radial_velocity is taken as 0 (no radial motion; a NULL parallax propagates as 0); NULL "
          "ra, dec, pmra, pmdec, ref_epoch or out_epoch gives NULL.")
COMMENTS = {
    "ivo_epoch_prop": (
        "IVOA UDF: propagate an astrometric solution (ra, dec [deg], parallax [mas], pmra = mu_alpha* and pmdec "
        "[mas/yr], radial_velocity [km/s]) from ref_epoch to out_epoch (Julian years) rigorously (Hipparcos vol. 1 "
        "sect. 1.5.5; Butkevich & Lindegren 2014); returns {ra, dec, parallax, pmra, pmdec, radial_velocity} at "
        "out_epoch, the radial velocity unchanged when the parallax is 0. " + _NULLS
    ),
    "ivo_epoch_prop_pos": (
        "IVOA UDF: the position at out_epoch (spoint) of ivo_epoch_prop with the same arguments. " + _NULLS
    ),
}


def upgrade() -> None:
    op.execute(EPOCH_PROP)
    op.execute(EPOCH_PROP_POS)  # SQL-standard body: its names are bound now, whatever a caller's search_path
    for name, comment in COMMENTS.items():
        op.execute(f"COMMENT ON FUNCTION {name}{TYPES} IS '{comment.replace(chr(39), chr(39) * 2)}'")
    # EXECUTE is granted to PUBLIC by default; grant it to the query role explicitly all the same.
    op.execute(f"""
        DO $$ BEGIN
            IF EXISTS (SELECT FROM pg_roles WHERE rolname = '{ROLE}') THEN
                GRANT EXECUTE ON FUNCTION ivo_epoch_prop{TYPES}, ivo_epoch_prop_pos{TYPES} TO {ROLE};
            END IF;
        END $$""")


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS ivo_epoch_prop_pos{TYPES}")
    op.execute(f"DROP FUNCTION IF EXISTS ivo_epoch_prop{TYPES}")
