"""Standard Model tree-level matrix elements: model, processes, diagrams, batched |M|²."""
from .base import MatrixElement, MatrixElementError
from .model import SMParameters, ParameterError
from .particles import UnknownParticleError

__all__ = ["MatrixElement", "MatrixElementError", "SMParameters", "ParameterError", "UnknownParticleError"]
