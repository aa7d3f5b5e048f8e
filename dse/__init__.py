"""accel-dse: design-space exploration of AI accelerators."""

__version__ = "0.1.0"
