"""NumPy ↔ Arrow for plain numbers without pandas.

``pyarrow.array(ndarray)`` and ``Array.to_numpy()`` import pandas (pyarrow checks for
pandas objects), which costs ~0.3 s once per process: more than reading and fitting a
million customers. Numbers without nulls need no conversion, only their buffer, so these
wrap the buffer in the other library's array, zero-copy where the data are contiguous.
"""

from __future__ import annotations

import numpy as np

_DTYPES = {"double": np.float64, "float": np.float32, "int64": np.int64, "int32": np.int32,
           "int16": np.int16, "int8": np.int8, "uint64": np.uint64, "uint32": np.uint32,
           "uint16": np.uint16, "uint8": np.uint8}


def from_numpy(values):
    """A 1-d NumPy array of numbers as an Arrow array (no nulls), sharing its memory."""
    import pyarrow as pa

    a = np.ascontiguousarray(values)
    if a.ndim != 1:
        raise ValueError("a 1-d array is needed")
    return pa.Array.from_buffers(pa.from_numpy_dtype(a.dtype), len(a), [None, pa.py_buffer(a)])


def to_numpy(array) -> np.ndarray:
    """An Arrow array or chunked array of numbers without nulls as a (read-only) NumPy
    array; chunks are concatenated once."""
    import pyarrow as pa

    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if array.null_count:
        raise ValueError("the array has nulls")
    dtype = np.dtype(_DTYPES[str(array.type)])
    if len(array) == 0:
        return np.empty(0, dtype=dtype)
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array), offset=array.offset * dtype.itemsize)
