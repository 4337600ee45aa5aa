"""The archive's product types (``products.product_type``), named once for every layer."""

from __future__ import annotations

#: Raw ramps (level 1) and calibrated rate images (level 2) of one detector exposure.
L1 = "wfi_l1"
L2 = "wfi_l2"
#: Source catalog of one L2 image (romancal's ImageSourceCatalogModel; its rows are in ``l2_sources``).
L2_CATALOG = "wfi_l2_cat"
#: Empirical PSF library file (level 2 derived): the ePSFs of one detector, filter and time window.
EPSF = "wfi_epsf"
#: Co-added skycell mosaic (level 3).
L3 = "wfi_l3"
#: Multiband skycell catalog file and its segmentation map (level 4).
L4_CATALOG = "wfi_l4_cat"
L4_SEGMENTATION = "wfi_l4_segm"
#: Level 5 community products: a catalog (loaded into a published table) or an ASDF file.
L5_CATALOG = "l5_catalog"
L5_ASDF = "l5_asdf"
