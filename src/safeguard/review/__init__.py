"""Review: grading and consensus (``grading``), item bytes re-read from the evidence
(``content``) and safe-view pictures (``thumbs``). See docs/review.md."""
