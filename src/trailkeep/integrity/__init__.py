"""Tamper evidence: RFC 6962 Merkle trees, checkpoints and proofs."""
