"""madnis_py: neural multi-channel importance sampling event generator."""
__version__ = "0.1.0"
