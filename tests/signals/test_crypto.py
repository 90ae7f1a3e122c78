from safeguard.signals.crypto import DigestBuilder, digest_bytes


def test_known_vectors() -> None:
    d = digest_bytes(b"abc")
    assert d.md5 == "900150983cd24fb0d6963f7d28e17f72"
    assert d.sha1 == "a9993e364706816aba3e25717850c26c9cd0d89d"
    assert d.sha256 == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_chunked_equals_whole_and_counts_bytes() -> None:
    data = bytes(range(256)) * 1000
    builder = DigestBuilder()
    for i in range(0, len(data), 4097):
        builder.update(data[i : i + 4097])
    assert builder.digest() == digest_bytes(data)
    assert builder.size == len(data)


def test_empty_input() -> None:
    assert digest_bytes(b"").md5 == "d41d8cd98f00b204e9800998ecf8427e"
