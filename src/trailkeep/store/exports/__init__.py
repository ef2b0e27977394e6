"""Storage of export jobs: their rows, and the claim of a job by one worker."""
