"""Safeguard: offline forensic triage for investigators of online child sexual abuse."""

__version__ = "0.1.0"
