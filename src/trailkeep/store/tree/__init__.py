"""The Merkle tree's stored form: tiles and checkpoints."""
