"""The campaign as staff declare it: the campaign row, its cases, the plan file and the
lifecycle of its waves (create, launch, pause, resume, cancel; the case kill switch)."""
