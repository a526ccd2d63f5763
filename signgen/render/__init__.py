"""Rendering: pinhole cameras and a headless OpenGL mesh rasteriser."""

from signgen.render.camera import PinholeCamera
from signgen.render.mesh_renderer import MeshRenderer, RenderOutput

__all__ = ["MeshRenderer", "PinholeCamera", "RenderOutput"]
