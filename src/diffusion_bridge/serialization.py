"""The two forms every artifact takes on disk: named tensors (one safetensors file) and JSON values."""

from __future__ import annotations

import json
from typing import Any

from torch import Tensor

# Named tensors of one artifact, e.g. {"embeddings": [N, D], "imgid": [N]}: ids travel with their rows.
Tensors = dict[str, Tensor]


def jsonable(value: Any) -> Any:
    """`value` as JSON would give it back (tuples become lists, keys strings): the form configs are compared in."""
    return json.loads(json.dumps(value))
