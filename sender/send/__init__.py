"""Getting a wave out exactly once: eligibility, send slots, the planner, the one-batch
pipeline and the `SendStore` it sees (`batch`; SQL in `batch_store`), the rest of sending's
SQL (`store`), the shared rate limit, the scheduler's tick, proof sends, and the transports
(`send/transport/`)."""
