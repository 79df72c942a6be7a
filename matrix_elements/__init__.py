"""Standard Model tree-level matrix elements: model, processes, diagrams, batched |M|².

Entry point: :func:`matrix_element` (process string -> batched callable).
"""
from .base import MatrixElement, MatrixElementError
from .model import ParameterError, SMParameters
from .particles import UnknownParticleError
from .process import ProcessError, parse_process
from .registry import NoMatrixElementError, matrix_element, matrix_element_for

__all__ = [
    "MatrixElement",
    "MatrixElementError",
    "NoMatrixElementError",
    "ParameterError",
    "ProcessError",
    "SMParameters",
    "UnknownParticleError",
    "matrix_element",
    "matrix_element_for",
    "parse_process",
]
