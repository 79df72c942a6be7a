"""Neural importance sampling core: VEGAS grids, spline flows, learned channel weights, training, integration.

``from madnis_py.nis import Integrator`` — see :mod:`madnis_py.nis.integrator` for the estimator.
"""
from .buffer import SampleBuffer
from .channel_weights import ChannelWeights
from .flows import ChannelFlows, SplineFlow
from .integrand import IntegrandError
from .integrator import Integrator, TrainingHistory, WeightedSample
from .losses import kl_loss, stratified_l3_loss, stratified_variance_loss, variance_loss
from .result import NISResult, reference_weight, unweighting_efficiencies
from channels.vegas_grid import VegasMap

__all__ = [
    "ChannelFlows", "ChannelWeights", "IntegrandError", "Integrator", "NISResult", "SampleBuffer", "SplineFlow",
    "TrainingHistory", "VegasMap", "WeightedSample", "kl_loss", "reference_weight", "stratified_l3_loss",
    "stratified_variance_loss",
    "unweighting_efficiencies", "variance_loss",
]
