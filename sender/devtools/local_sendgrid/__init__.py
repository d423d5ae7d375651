"""A local SendGrid-compatible server (v3 mail/send, faults, signed events, inbound replies),
run as a real process by the demo, the tests and the benchmarks."""
