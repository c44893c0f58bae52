"""nessai-farm's Python package.

``Model`` is a base class with nessai's model interface, for model files
run with ``nessai-coordinator --model file.py:Class`` when nessai itself is
not installed (a ``nessai.model.Model`` subclass runs unchanged when it is).
``FlowSampler`` runs nessai-coordinator on a model from Python.
See docs/python.md.
"""
from .livepoint import (
    empty_structured_array,
    get_dtype,
    live_points_to_array,
    numpy_array_to_live_points,
    parameters_to_live_point,
)
from .flowsampler import FarmPool, FlowSampler
from .model import Model, check_vectorised_function

__all__ = [
    "FarmPool",
    "FlowSampler",
    "Model",
    "check_vectorised_function",
    "empty_structured_array",
    "get_dtype",
    "live_points_to_array",
    "numpy_array_to_live_points",
    "parameters_to_live_point",
]
