"""sGPO Studio: spend a little inference up front to learn which queries teach something, then train only there."""

__version__ = "0.1.0"
