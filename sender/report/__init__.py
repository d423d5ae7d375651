"""Campaign results and what staff look up.

Running totals per case, wave, language and day (totals), actions per case
and day (activity), their charts (charts), and one address's suppression (lookup).
"""
