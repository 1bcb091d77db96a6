"""onshore: keeps connected-vehicle data in the country that collected it."""

__version__ = "0.1.0"
