"""Phase space: analytic mappings with exact densities and inverses, channels, multi-channel VEGAS.

No neural networks here.  Every block follows the :class:`Mapping` protocol
(``forward(u) -> (x, log_q)``, ``inverse(x) -> (u, log_q)``); final-state blocks
additionally take the total momentum (or √ŝ) they are conditioned on.
"""
from . import kinematics
from .channel import PhaseSpaceChannel, build_channels, propagator_prior
from .invariants import BreitWigner, InvariantSampler, PowerLaw, Uniform, sampler_for
from .kinematics import PhaseSpaceError
from .luminosity import Collision, Luminosity
from .mapping import Chain, Mapping
from .rambo import Rambo
from .tchannel import TChannel
from .two_body import TwoBody
from .vegas_grid import VegasMap

__all__ = [
    "BreitWigner", "Chain", "Collision", "InvariantSampler", "Luminosity", "Mapping", "PhaseSpaceChannel", "PhaseSpaceError",
    "PowerLaw", "Rambo", "TChannel", "TwoBody", "Uniform", "VegasMap", "build_channels", "kinematics", "propagator_prior",
    "sampler_for",
]
