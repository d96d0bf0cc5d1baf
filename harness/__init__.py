"""Test-performance study of a FastAPI quiz backend under two test architectures."""

__version__ = "0.1.0"
