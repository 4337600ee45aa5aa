"""Time-domain products: forced-photometry light curves, variability indices and difference imaging."""
