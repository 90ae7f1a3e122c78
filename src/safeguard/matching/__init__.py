"""Matching scanned items against the hash library: exact digests and PDQ near-duplicates."""
