"""Test support: live servers, populated archives, synthetic images (never imported by the package)."""
