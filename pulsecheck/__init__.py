"""Pulsecheck: rules engine and approval workflow for customer health score reviews."""

__version__ = "0.1.0"
