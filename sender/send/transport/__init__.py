"""Ways out for mail: the pipeline sees only the Transport protocol."""
