"""Test, demo and benchmark helpers that run real servers on this machine."""
