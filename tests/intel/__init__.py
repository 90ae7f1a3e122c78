"""Tests of the lab-wide view across cases (src/safeguard/intel)."""
