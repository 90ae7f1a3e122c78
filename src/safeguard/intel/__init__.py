"""The lab-wide view across cases (docs/links.md, docs/ranking.md).

- :mod:`.index`: :class:`~.index.LabIndex`, what every case holds that could link it to
  another (digests, PDQ, series, cameras, model files, training sets, prompt hashes),
  updated per case in one transaction and rebuilt by ``safeguard index rebuild``;
- :mod:`.pdq_cache`: the PDQ search over every case's new pictures, kept on disk;
- :mod:`.links`: :func:`~.links.links`, the links of one case to the others, as one viewer
  may see them;
- :mod:`.rank`: the ranked backlog, a harm score per case that explains itself line by line.
"""
