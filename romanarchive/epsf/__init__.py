"""The empirical PSF library: ePSFs built from dithered L2 stars, stored as products, selected through an API."""
