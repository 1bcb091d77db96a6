"""Drivers' rights: consent (minimal for now), access and erasure."""
