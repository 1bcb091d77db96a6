"""The reports tests' known activity (``tests.reports.known``), as a fixture."""

from tests.reports.known import activity

__all__ = ["activity"]
