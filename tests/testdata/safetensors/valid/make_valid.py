# SPDX-License-Identifier: Apache-2.0
# Regenerates the reference-written fixtures of this folder with the Python `safetensors`
# package (0.8.0, numpy backend). Run: python make_valid.py (from this folder).
import numpy as np
from safetensors.numpy import save_file

# Mixed dtypes, a scalar, a zero-sized tensor, metadata {"format": "pt"}.
save_file(
    {
        "model.embed.weight": np.arange(12, dtype=np.float32).reshape(3, 4),
        "model.norm.bias": np.array([1.5, -2.0, 0.25], dtype=np.float16),
        "step": np.array(7, dtype=np.int64),
        "empty": np.zeros((0, 5), dtype=np.int8),
        "mask": np.array([True, False, True], dtype=np.bool_),
        "bytes": np.arange(5, dtype=np.uint8),
        "f64": np.array([3.25], dtype=np.float64),
        "i16": np.array([[1, -2], [3, -4]], dtype=np.int16),
    },
    "mixed_dtypes.safetensors",
    metadata={"format": "pt"},
)

# No __metadata__ member at all.
save_file({"a": np.ones(2, dtype=np.float32), "b": np.ones(3, dtype=np.uint32)},
          "no_metadata.safetensors")

# Names that exercise JSON escaping: quote, backslash, short escapes, \u00xx controls, '/',
# DEL and non-ASCII (written raw).
save_file(
    {
        'quote"back\\slash': np.ones(1, dtype=np.uint8),
        "tab\tnl\ncr\rbs\bff\f": np.ones(1, dtype=np.uint8),
        "ctl\x01\x1f\x7fdel": np.ones(1, dtype=np.uint8),
        "path/to/w\u00e9ight\u4e2d\U0001f600": np.ones(2, dtype=np.float16),
    },
    "escaped_names.safetensors",
    metadata={"format": "pt"},
)

# Zero tensors: the header is "{}" plus padding, and no data.
save_file({}, "no_tensors.safetensors")
