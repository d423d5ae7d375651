"""Campaign email sender for human-rights letter-writing campaigns."""

__version__ = "0.1.0"
