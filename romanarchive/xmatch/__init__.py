"""Cross-matching: reference catalogs, bulk HEALPix sort-merge matches beside the database, HATS export."""
