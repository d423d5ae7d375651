"""Campaign results and what staff look up.

Running totals per case, wave, language and day (totals), campaigns side by
side (campaigns), the one table model every report is printed from (tables)
with its inline SVG bars (bars), who may read which campaign's report
(access), actions per case and day (activity), the matplotlib charts (charts),
and one address's suppression (lookup).
"""
