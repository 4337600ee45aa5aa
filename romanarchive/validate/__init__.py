"""Validation of an archive's products against a simulation's truth: ``romanarchive validate``.

Modules, in the order the report uses them:

* :mod:`~romanarchive.validate.matching` — the truth catalogue (positions at the survey epochs, fluxes in nJy) and
  positional matching on the sphere;
* :mod:`~romanarchive.validate.stats` — pure statistics (purity, duplicates, completeness, bias, pulls, astrometric
  offsets) and :class:`~romanarchive.validate.stats.Figure`, one reported number next to its acceptance goal;
* :mod:`~romanarchive.validate.inputs` — what is read from the archive's database and object store;
* :mod:`~romanarchive.validate.catalog_checks`, :mod:`~romanarchive.validate.photometry`,
  :mod:`~romanarchive.validate.timedomain`, :mod:`~romanarchive.validate.peer` — the figures of each part
  (catalog purity, units and photometry, astrometry, time domain, source-extractor comparison);
* :mod:`~romanarchive.validate.report` — printing, JSON and PNG plots; :mod:`~romanarchive.validate.cli` — the
  command.
"""
