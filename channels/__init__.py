"""Phase space: analytic mappings with exact densities, channels, multi-channel VEGAS (no neural nets)."""
from .mapping import Chain, Mapping

__all__ = ["Mapping", "Chain"]
