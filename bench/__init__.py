"""Benchmarks, one module each (`python -m bench.<name>`).

They run on throwaway servers with throwaway secrets, never against real
supporters: dev mode (sender.core.runmode), set before any settings are read
and inherited by the workers and web servers they start.
"""

import os

os.environ["CAMPAIGN_MODE"] = "dev"
