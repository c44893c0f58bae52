"""Live points as structured arrays, in nessai's layout.

A live point has one float64 field per parameter (in the model's order) and
the fields ``logP`` (float64), ``logL`` (float64) and ``it`` (int32), the
layout nessai uses, so code written against nessai's arrays reads these.
"""
import numpy as np

LOGP_DTYPE = "f8"
LOGL_DTYPE = "f8"
IT_DTYPE = "i4"
CORE_FIELDS = ("logP", "logL", "it")


def get_dtype(names):
    """The structured dtype of live points with these parameter names."""
    return np.dtype(
        [(n, "f8") for n in names]
        + [("logP", LOGP_DTYPE), ("logL", LOGL_DTYPE), ("it", IT_DTYPE)]
    )


def empty_structured_array(n, names):
    """n live points: parameters 0, logP and logL NaN, it 0."""
    x = np.zeros(n, dtype=get_dtype(names))
    x["logP"] = np.nan
    x["logL"] = np.nan
    return x


def numpy_array_to_live_points(array, names):
    """Rows of an (n, len(names)) array as live points."""
    array = np.asarray(array, dtype="f8")
    if array.ndim == 1:
        array = array[np.newaxis, :]
    x = empty_structured_array(array.shape[0], names)
    for j, name in enumerate(names):
        x[name] = array[:, j]
    return x


def parameters_to_live_point(parameters, names):
    """One live point (an array of length 1) from a sequence of values."""
    return numpy_array_to_live_points(np.asarray(parameters, dtype="f8"), names)


def live_points_to_array(x, names):
    """The parameter columns of live points as an (n, len(names)) array."""
    return np.stack([np.asarray(x[n], dtype="f8") for n in names], axis=-1)
