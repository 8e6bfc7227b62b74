"""diemcau: a command center and online meeting system for every commune-level site."""

__version__ = "0.1.0"

__all__ = ["__version__"]
