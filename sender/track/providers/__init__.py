"""One module per mail provider: its event lookup table, translator and signature check."""
