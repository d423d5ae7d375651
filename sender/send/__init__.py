"""Getting a wave out exactly once: eligibility, send slots, the planner, the store (the
pipeline's only door to the database), the one-batch pipeline, the shared rate limit, the
scheduler's tick, proof sends, and the transports (`send/transport/`)."""
