"""A multi-target Prometheus exporter for weather, in the style of blackbox_exporter."""

__version__ = "0.1.0"
