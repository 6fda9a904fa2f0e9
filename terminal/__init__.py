"""posterm: the firmware service of a chain store's loyalty cash terminal."""

__version__ = "0.1.0"
