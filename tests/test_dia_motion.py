"""Moving objects in DIA: the rate across an epoch's exposures and the linking of epochs into tracks."""

from __future__ import annotations

import numpy as np

from romanarchive.timeseries.dia_motion import Detection, epoch_rates, link_tracks


def test_epoch_rate_of_a_drifting_centroid() -> None:
    # Two detections x four exposures over 10 minutes: one drifts 1 arcsec/h east, 0.5 arcsec/h south; one is fixed.
    t = 61000.0 + np.arange(4) * (200.0 / 86400.0)
    hours = (t - t[0]) * 24.0
    rng = np.random.default_rng(1)
    err = np.full((2, 4), 3.0)  # mas
    dra = np.vstack([1000.0 * hours, np.zeros(4)]) + rng.normal(0, 3.0, (2, 4))
    ddec = np.vstack([-500.0 * hours, np.zeros(4)]) + rng.normal(0, 3.0, (2, 4))
    r = epoch_rates(t, dra, ddec, err)
    assert abs(r.ra[0] - 1.0) < 5 * r.err[0] and abs(r.dec[0] + 0.5) < 5 * r.err[0]
    assert r.err[0] < 0.05
    assert r.dchi2[0] > 25 and r.dchi2[1] < 25
    # One measured exposure: no rate.
    one = epoch_rates(t, np.where(np.arange(4) == 0, dra, np.nan), ddec, err)
    assert np.isnan(one.ra).all()


def test_tracks_link_a_mover_across_epochs_and_not_strangers() -> None:
    rate_ra, rate_dec = 0.3, -0.85  # arcsec/h: ~22"/day
    ra0, dec0 = 271.806, 66.727
    dets = []
    for day in range(3):
        for filt_dt in (0.0, 0.002):  # two filters a few minutes apart
            dt_h = (day + filt_dt) * 24.0
            dets.append(Detection(ra0 + rate_ra * dt_h / 3600.0 / np.cos(np.radians(dec0)),
                                  dec0 + rate_dec * dt_h / 3600.0, 61000.0 + day + filt_dt,
                                  rate_ra * 1.1, rate_dec * 0.95, 0.05))
    # Another mover nearby on day 1, moving the other way; and one at the mover's place but at rest-like rate.
    dets.append(Detection(ra0 + 0.002, dec0 - 0.001, 61001.0, -0.8, 0.2, 0.05))
    dets.append(Detection(dets[2].ra, dets[2].dec, 61001.001, 0.0, 0.0, 0.02))
    track = link_tracks(dets)
    assert len(set(track[:6].tolist())) == 1
    assert track[6] != track[0] and track[7] != track[0]
