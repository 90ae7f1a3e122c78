"""A partition with no signature whose bytes look random throughout: VeraCrypt and
TrueCrypt volumes have no header anyone can recognise without the key, only ciphertext.
Wiped-with-random or compressed data looks the same, so it is reported as "possibly", and
still carved (nothing is lost if it is not ciphertext)."""

from __future__ import annotations

from safeguard.evidence.volumes.base import HIGH_ENTROPY, Sample, entropy


class HighEntropy:
    name = "high-entropy"
    label = "high-entropy (possibly VeraCrypt/TrueCrypt)"
    encrypted = False  # a guess: carving still runs
    note = "high-entropy (possibly VeraCrypt/TrueCrypt), not read"

    def detect(self, head: bytes, sample: Sample) -> bool:
        blocks = sample()
        return bool(blocks) and all(entropy(block) > HIGH_ENTROPY for block in blocks)
