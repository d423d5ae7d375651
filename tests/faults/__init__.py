"""Fault-injection tests of the send pipeline (see docs/FAULTS.md)."""

import pytest

# The fixtures module holds the verdict's asserts: rewrite them for clear failures.
pytest.register_assert_rewrite("faults.fault_fixtures")
