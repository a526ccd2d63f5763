"""Per-vertex colours from appearance regions (skin, hair, shirt, ...)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from signgen.errors import InvalidInputError

# RGB in [0, 1]; a dark long-sleeved shirt, as signers in broadcast corpora wear.
DEFAULT_PALETTE: dict[str, tuple[float, float, float]] = {
    "skin": (0.87, 0.70, 0.58),
    "hand": (0.87, 0.70, 0.58),
    "hair": (0.22, 0.15, 0.10),
    "brow": (0.22, 0.15, 0.10),
    "eye": (0.08, 0.08, 0.10),
    "lips": (0.72, 0.42, 0.42),
    "shirt": (0.16, 0.22, 0.38),
    "trousers": (0.22, 0.22, 0.25),
    "shoes": (0.10, 0.10, 0.10),
}


def region_vertex_colors(vertex_regions: np.ndarray, region_names: Sequence[str],
                         palette: Mapping[str, Sequence[float]] | None = None) -> np.ndarray:
    """(V,) region ids -> (V,3) float32 colours in [0,1]; ``palette`` overrides defaults."""
    colours = dict(DEFAULT_PALETTE, **(palette or {}))
    missing = [name for name in region_names if name not in colours]
    if missing:
        raise InvalidInputError(f"no colour for appearance regions {missing}")
    table = np.array([colours[name] for name in region_names], dtype=np.float32)
    if (table < 0).any() or (table > 1).any():
        raise InvalidInputError("palette colours must be RGB values in [0, 1]")
    return table[np.asarray(vertex_regions)]


def body_vertex_colors(body) -> np.ndarray:
    """(V,3) float32 colours of a ``BodyModel``: its appearance regions in the default
    palette (the stand-in carries them), else skin everywhere (official SMPL-X files
    carry no regions)."""
    if body.vertex_regions is not None:
        return region_vertex_colors(body.vertex_regions.numpy(), body.region_names)
    return np.tile(np.float32(DEFAULT_PALETTE["skin"]), (body.num_vertices, 1))
