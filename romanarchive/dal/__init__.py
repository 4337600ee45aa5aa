"""IVOA data access over the archive's products: SIA 2.0 query, DataLink links, SODA cutouts and PNG previews."""
