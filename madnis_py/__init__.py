"""madnis_py: neural multi-channel importance sampling event generator."""
__version__ = "0.1.0"

__all__ = ["Integrator"]


def __getattr__(name: str):
    # ``from madnis_py import Integrator`` without importing torch for every ``import madnis_py``
    if name == "Integrator":
        from .nis import Integrator

        return Integrator
    raise AttributeError(f"module 'madnis_py' has no attribute {name!r}")
