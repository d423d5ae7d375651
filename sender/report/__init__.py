"""Campaign results: running totals per case, wave, language and day, and their charts."""
