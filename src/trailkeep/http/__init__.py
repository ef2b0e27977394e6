"""HTTP plumbing shared by every endpoint: errors, request ids, bodies, credentials."""
