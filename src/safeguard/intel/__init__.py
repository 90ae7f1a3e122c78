"""The lab-wide view across cases: links between cases, the ranked backlog (docs/ranking.md)."""
