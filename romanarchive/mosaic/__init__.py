"""Level 3 mosaics: co-adding L2 images onto the sky tessellation."""
