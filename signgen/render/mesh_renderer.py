"""Headless OpenGL rasteriser for triangle meshes (colour, depth, normals, part labels).

Rendering uses moderngl on an EGL standalone context (works without a display,
e.g. Mesa llvmpipe).  There is no anti-aliasing, so a pixel is covered exactly
when its centre is inside a triangle (GL's rasterisation rule), and repeated
renders are byte-identical.

Processes and threads
---------------------
An EGL context works only on the thread that created it, and every context
costs memory that Mesa does not give back even when it is released (about
7 MB each with llvmpipe).  So each process has one context, created lazily on a
private "signgen-gl" thread at the first :meth:`MeshRenderer.render`; calls from
any thread are handed to it and run one at a time (llvmpipe already uses all
cores).  The program, vertex buffers and per-size framebuffers live there and
are reused by every renderer.  Constructing a renderer touches no OpenGL, so
renderers can be built in a parent process and pickled to workers.

A child *forked* after its parent created a context hangs inside EGL, even when
it only creates a fresh context (checked with Mesa's EGL).  Rendering in such a
child therefore raises ``RuntimeError``; use the ``"spawn"`` or ``"forkserver"``
multiprocessing start method, or render for the first time only in the workers.
Forking from a parent that never rendered is fine.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import moderngl
import numpy as np
import torch

from signgen.errors import InvalidInputError
from signgen.render.camera import PinholeCamera

MAX_LABEL = 65535

_VERTEX_SHADER = """
#version 330
uniform mat4 mvp;           // world -> clip
uniform mat4 world_to_cam;  // world -> OpenCV camera axes
in vec3 in_position;
in vec3 in_normal;
in vec3 in_color;
in uint in_label;
out vec3 v_position;
out vec3 v_normal;
out vec3 v_color;
flat out uint v_label;
void main() {
    v_position = (world_to_cam * vec4(in_position, 1.0)).xyz;
    v_normal = mat3(world_to_cam) * in_normal;
    v_color = in_color;
    v_label = in_label;
    gl_Position = mvp * vec4(in_position, 1.0);
}
"""

_FRAGMENT_SHADER = """
#version 330
uniform vec3 light_direction;  // unit, camera axes, surface -> light
uniform float ambient;
in vec3 v_position;
in vec3 v_normal;
in vec3 v_color;
flat in uint v_label;
layout(location = 0) out vec4 out_color;
layout(location = 1) out vec4 out_geometry;  // camera-space normal, camera z
layout(location = 2) out float out_label;
void main() {
    float len = length(v_normal);
    // Vertices whose faces are all degenerate have no normal: face the camera.
    vec3 normal = len > 1e-20 ? v_normal / len : vec3(0.0, 0.0, -1.0);
    // Two-sided lighting: when a triangle's back is visible, shade that side.
    if (!gl_FrontFacing) {
        normal = -normal;
    }
    float diffuse = max(dot(normal, light_direction), 0.0);
    out_color = vec4(v_color * (ambient + (1.0 - ambient) * diffuse), 1.0);
    out_geometry = vec4(normal, v_position.z);
    out_label = float(v_label);
}
"""

# The GL thread, and the pid that started it (a forked child inherits both values).
_gl_executor: ThreadPoolExecutor | None = None
_gl_pid: int | None = None
_gl_lock = threading.Lock()
# Touched only on the GL thread.
_gl_state: _GLState | None = None


@dataclass
class RenderOutput:
    """Per-pixel render results for B frames of H x W pixels (row 0 = image top).

    Attributes:
        rgb: (B, H, W, 3) uint8 shaded colour; the renderer's background where nothing was hit.
        depth: (B, H, W) float32 camera-space z in metres (> 0), 0 for background
            (None from a renderer made with ``geometry=False``).
        normals: (B, H, W, 3) float32 unit normals in OpenCV camera axes, oriented
            towards the camera side that is visible; 0 for background (None likewise).
        labels: (B, H, W) int32 part ids from ``vertex_labels`` (>= 1), 0 for background.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    normals: np.ndarray | None
    labels: np.ndarray

    @property
    def mask(self) -> np.ndarray:
        """(B, H, W) bool, True where the mesh covers the pixel centre."""
        return self.labels > 0


class _GLState:
    """The process's context, shader program, growable vertex buffers and framebuffers."""

    _ATTRIBUTES = (("position", "3f"), ("normal", "3f"), ("color", "3f"), ("label", "1u"))

    def __init__(self) -> None:
        self.ctx = moderngl.create_context(standalone=True, backend="egl")
        # Labels are flat attributes; pin which vertex supplies them.
        self.ctx.provoking_vertex = moderngl.LAST_VERTEX_CONVENTION
        # Face culling stays off (the GL default) so both sides of a triangle render.
        self.ctx.enable(moderngl.DEPTH_TEST)
        self.program = self.ctx.program(
            vertex_shader=_VERTEX_SHADER, fragment_shader=_FRAGMENT_SHADER
        )
        # Buffers start small and grow with orphan(), which keeps their GL names,
        # so the vertex array built over them stays valid.
        self.buffers = {name: self.ctx.buffer(reserve=4) for name, _ in self._ATTRIBUTES}
        self.index_buffer = self.ctx.buffer(reserve=4)
        self.vertex_array = self.ctx.vertex_array(
            self.program,
            [(self.buffers[name], fmt, f"in_{name}") for name, fmt in self._ATTRIBUTES],
            index_buffer=self.index_buffer,
            index_element_size=4,
        )
        self.framebuffers: dict[tuple[int, int], moderngl.Framebuffer] = {}

    @staticmethod
    def _write(buffer: moderngl.Buffer, data: np.ndarray) -> None:
        data = np.ascontiguousarray(data)
        if data.nbytes > buffer.size:
            buffer.orphan(data.nbytes)
        buffer.write(data)

    def _framebuffer(self, width: int, height: int) -> moderngl.Framebuffer:
        size = (width, height)
        if size not in self.framebuffers:
            self.framebuffers[size] = self.ctx.framebuffer(
                color_attachments=[
                    self.ctx.texture(size, 4, dtype="f1"),  # shaded colour
                    self.ctx.texture(size, 4, dtype="f4"),  # normal xyz, camera z
                    self.ctx.texture(size, 1, dtype="f4"),  # label (exact below 2**24)
                ],
                depth_attachment=self.ctx.depth_renderbuffer(size),
            )
        return self.framebuffers[size]

    def draw(
        self,
        size: tuple[int, int],
        uniforms: dict,
        faces: np.ndarray,
        labels: np.ndarray,
        positions: np.ndarray,
        normals: np.ndarray,
        colors: np.ndarray,
        cull_back_faces: bool = False,
        geometry: bool = True,
    ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        """Rasterise B frames; array arguments are ready-typed (u4 / f4), colours may have B = 1.

        Returns (B, H, W, 3) uint8 colour, (B, H, W, 4) float32 normal + depth (None
        unless ``geometry``) and (B, H, W) float32 labels, all in image row order,
        background 0. ``cull_back_faces`` skips triangles seen from behind.
        """
        width, height = size
        framebuffer = self._framebuffer(width, height)
        framebuffer.use()
        # The context is shared by every renderer: set the culling of this draw.
        if cull_back_faces:
            self.ctx.enable(moderngl.CULL_FACE)
        else:
            self.ctx.disable(moderngl.CULL_FACE)
        for name, value in uniforms.items():
            self.program[name].value = value
        self._write(self.index_buffer, faces)
        self._write(self.buffers["label"], labels)
        shape = (len(positions), height, width)
        outputs = (
            np.empty(shape + (3,), np.uint8),
            np.empty(shape + (4,), np.float32) if geometry else None,
            np.empty(shape, np.float32),
        )
        for b in range(len(positions)):
            self._write(self.buffers["position"], positions[b])
            self._write(self.buffers["normal"], normals[b])
            self._write(self.buffers["color"], colors[min(b, len(colors) - 1)])
            framebuffer.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
            if faces.size:
                self.vertex_array.render(moderngl.TRIANGLES, vertices=faces.size)
            for attachment, out in enumerate(outputs):
                if out is None:
                    continue
                components = out.shape[3] if out.ndim == 4 else 1
                dtype = "f1" if out.dtype == np.uint8 else "f4"
                data = framebuffer.read(components=components, attachment=attachment, dtype=dtype)
                # GL rows run bottom-up; flip to image order.
                out[b] = np.frombuffer(data, out.dtype).reshape(out.shape[1:])[::-1]
        return outputs


def _draw_on_gl_thread(*args) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body of every GL task: create the process's GL state on first use, then draw."""
    _create_gl_state()
    return _gl_state.draw(*args)


def _gl_thread() -> ThreadPoolExecutor:
    """This process's GL thread, started if needed."""
    global _gl_executor, _gl_pid
    pid = os.getpid()
    # Checked before taking the lock, which a fork may have copied in a held state.
    if _gl_pid is not None and _gl_pid != pid:
        raise RuntimeError(
            f"MeshRenderer cannot render in process {pid}: it was forked from process "
            f"{_gl_pid} after that process initialised OpenGL/EGL, and EGL hangs in such "
            "children.  Start workers with the 'spawn' or 'forkserver' multiprocessing "
            "start method (e.g. torch DataLoader(multiprocessing_context='spawn')), or "
            "do not render in the parent before forking."
        )
    with _gl_lock:
        if _gl_executor is None:
            _gl_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signgen-gl")
            _gl_pid = pid
    return _gl_executor


def _create_gl_state() -> None:
    global _gl_state
    if _gl_state is None:
        _gl_state = _GLState()


def warm_up() -> None:
    """Start creating this process's GL context on its thread and return at once.

    Creating it (EGL, shader compilation) takes ~0.2 s on llvmpipe; started before model
    loading it overlaps that instead of delaying the first render, which waits for it
    if needed. A failure here is not raised: the first render tries again and raises.
    Like rendering, this makes a forked child unable to render (see the module doc)."""
    _gl_thread().submit(_create_gl_state)


def _to_numpy(value, name: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    try:
        return np.asarray(value)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"{name} must be array-like, got {type(value).__name__}") from exc


def _as_batch(
    value, name: str, num_vertices: int | None = None, batch: int | None = None
) -> np.ndarray:
    """Validate (V, 3) or (B, V, 3) finite numbers; return (B, V, 3) float64 (B = 1 for (V, 3))."""
    array = _to_numpy(value, name)
    if array.ndim not in (2, 3) or array.shape[-1] != 3:
        raise InvalidInputError(
            f"{name} must have shape (V, 3) or (B, V, 3), got {tuple(array.shape)}"
        )
    if batch is not None and array.ndim == 3 and array.shape[0] != batch:
        raise InvalidInputError(
            f"{name} has batch size {array.shape[0]}, but vertices have {batch}"
        )
    array = array.reshape((-1,) + array.shape[-2:])
    if num_vertices is not None and array.shape[1] != num_vertices:
        raise InvalidInputError(f"{name} has {array.shape[1]} vertices, expected {num_vertices}")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise InvalidInputError(f"{name} must be numeric, got dtype {array.dtype}")
    array = array.astype(np.float64, copy=False)
    if not np.all(np.isfinite(array)):
        raise InvalidInputError(f"{name} contains NaN or inf")
    return array


def vertex_normals(vertices: np.ndarray, faces: np.ndarray) -> np.ndarray:
    """Area-weighted unit vertex normals.

    Args:
        vertices: (B, V, 3) float positions.
        faces: (F, 3) int vertex indices; the normal follows the right-hand rule.
    Returns:
        (B, V, 3) float64 unit normals; 0 for vertices without non-degenerate faces.
    """
    from scipy.sparse import csr_matrix

    batch, num_vertices, _ = vertices.shape
    vertices = np.asarray(vertices, dtype=np.float64)
    # Face-major (F, B, 3) so that the sparse product below needs no copy.
    corner = vertices.transpose(1, 0, 2)[faces[:, 0]]
    edge1 = vertices.transpose(1, 0, 2)[faces[:, 1]] - corner
    edge2 = vertices.transpose(1, 0, 2)[faces[:, 2]] - corner
    # The cross product's length is twice the face area, which gives the weighting.
    face_normals = np.cross(edge1, edge2)
    # Each vertex sums the normals of its faces: a sparse (V, F) incidence matrix times
    # the face normals of all frames at once (~2x faster than scatter-adding them).
    num_faces = len(faces)
    incidence = csr_matrix((np.ones(3 * num_faces), (faces.T.ravel(),
                                                     np.tile(np.arange(num_faces), 3))),
                           shape=(num_vertices, num_faces))
    sums = incidence @ face_normals.reshape(num_faces, batch * 3)
    normals = np.asarray(sums, dtype=np.float64).reshape(num_vertices, batch, 3)
    normals = normals.transpose(1, 0, 2)
    length = np.linalg.norm(normals, axis=-1, keepdims=True)
    return np.divide(normals, length, out=np.zeros_like(normals), where=length > 0)


class MeshRenderer:
    """Render triangle meshes to colour, depth, normal and label images.

    Shading is Lambertian with smooth (area-weighted) vertex normals plus
    ambient: ``colour = albedo * (ambient + (1 - ambient) * max(0, n . l))``, so
    a surface facing the light shows its full albedo.  Both triangle sides are
    drawn (no culling) with a depth test; a triangle seen from behind is shaded
    and reported with its normal flipped towards the camera.

    Args:
        width, height: output size in pixels; cameras passed to :meth:`render` must match.
        background: RGB in [0, 1] for pixels no triangle covers.
        ambient: ambient light fraction in [0, 1].
        light_direction: (3,) direction from the surface towards a directional
            light, in OpenCV camera axes (normalised here).  The default comes from
            the camera's upper left.
        near, far: camera-space z clipping range in metres, ``0 < near < far``.
        cull_back_faces: skip triangles seen from behind (~40 % faster on llvmpipe for
            a body mesh; only where the mesh is closed is the image the same).
        geometry: False: no depth and normal images (``RenderOutput.depth`` and
            ``.normals`` are None; less to read back).
    """

    def __init__(
        self,
        width: int,
        height: int,
        background=(1.0, 1.0, 1.0),
        ambient: float = 0.35,
        light_direction=(-0.4, -0.5, -1.0),
        near: float = 0.05,
        far: float = 100.0,
        cull_back_faces: bool = False,
        geometry: bool = True,
    ) -> None:
        for name, value in (("width", width), ("height", height)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise InvalidInputError(f"{name} must be a positive integer, got {value!r}")
        self.width, self.height = int(width), int(height)
        self.near, self.far = float(near), float(far)
        if not (np.isfinite(self.far) and 0.0 < self.near < self.far):
            raise InvalidInputError(f"need finite 0 < near < far, got near={near}, far={far}")
        background = _to_numpy(background, "background").astype(np.float64)
        if background.shape != (3,) or not np.all((background >= 0) & (background <= 1)):
            raise InvalidInputError(
                f"background must be 3 floats in [0, 1], got {background.tolist()}"
            )
        self.background = tuple(background.tolist())
        self.ambient = float(ambient)
        if not 0.0 <= self.ambient <= 1.0:
            raise InvalidInputError(f"ambient must be in [0, 1], got {ambient}")
        light = _to_numpy(light_direction, "light_direction").astype(np.float64)
        norm = np.linalg.norm(light) if light.shape == (3,) else 0.0
        if not (np.isfinite(norm) and norm > 0):
            raise InvalidInputError(
                f"light_direction must be a finite non-zero 3-vector, got {light.tolist()}"
            )
        self.light_direction = tuple((light / norm).tolist())
        self.cull_back_faces, self.geometry = bool(cull_back_faces), bool(geometry)

    def render(
        self,
        vertices,
        faces,
        camera: PinholeCamera,
        vertex_colors=None,
        vertex_labels=None,
    ) -> RenderOutput:
        """Render one mesh topology over B frames of vertex positions.

        Args:
            vertices: (V, 3) or (B, V, 3) finite floats, world metres (numpy or torch).
            faces: (F, 3) integer indices in [0, V).
            camera: a :class:`PinholeCamera` of this renderer's size.
            vertex_colors: (V, 3) or (B, V, 3) albedo in [0, 1]; default light grey.
            vertex_labels: (V,) integer part ids in [1, 65535); 0 is reserved for the
                background.  A face takes its last vertex's label.  Default: all 1.
        Returns:
            :class:`RenderOutput` with a leading batch dimension B (1 for (V, 3) input).
        """
        return self.render_async(vertices, faces, camera, vertex_colors,
                                 vertex_labels).result()

    def render_async(
        self,
        vertices,
        faces,
        camera: PinholeCamera,
        vertex_colors=None,
        vertex_labels=None,
    ) -> Future[RenderOutput]:
        """:meth:`render` without waiting: the inputs are checked here (bad input raises
        at once), the normals, rasterisation and read-back run on the GL thread while the
        caller goes on; ``.result()`` gives the :class:`RenderOutput`. Renders run in
        submission order."""
        verts = _as_batch(vertices, "vertices")
        batch, num_vertices, _ = verts.shape
        faces = self._check_faces(faces, num_vertices)
        if vertex_colors is None:
            colors = np.full((1, num_vertices, 3), 0.8)
        else:
            colors = _as_batch(vertex_colors, "vertex_colors", num_vertices, batch)
            if np.any((colors < 0) | (colors > 1)):
                raise InvalidInputError("vertex_colors must be in [0, 1]")
        labels = self._check_labels(vertex_labels, num_vertices)
        if not isinstance(camera, PinholeCamera):
            raise InvalidInputError(f"camera must be a PinholeCamera, got {type(camera).__name__}")
        if (camera.width, camera.height) != (self.width, self.height):
            raise InvalidInputError(
                f"camera size {camera.width}x{camera.height} does not match renderer size "
                f"{self.width}x{self.height}"
            )
        mvp = camera.opengl_projection(self.near, self.far) @ camera.view_matrix()
        uniforms = {
            # GLSL matrices are column-major, hence the transposes.
            "mvp": tuple(mvp.T.ravel()),
            "world_to_cam": tuple(camera.extrinsics_matrix().T.ravel()),
            "light_direction": self.light_direction,
            "ambient": self.ambient,
        }
        return _gl_thread().submit(self._render_prepared, uniforms, faces, labels, verts,
                                   colors)

    def _render_prepared(self, uniforms: dict, faces: np.ndarray, labels: np.ndarray,
                         verts: np.ndarray, colors: np.ndarray) -> RenderOutput:
        """On the GL thread: normals, draw, and the outputs of checked inputs."""
        normals = vertex_normals(verts, faces)
        rgb, geometry, label_image = _draw_on_gl_thread(
            (self.width, self.height),
            uniforms,
            faces.astype(np.uint32),
            labels,
            verts.astype(np.float32),
            normals.astype(np.float32),
            colors.astype(np.float32),
            self.cull_back_faces,
            self.geometry,
        )
        labels_out = label_image.astype(np.int32)
        mask = labels_out > 0
        background = np.round(np.array(self.background) * 255).astype(np.uint8)
        return RenderOutput(
            rgb=np.where(mask[..., None], rgb, background),
            depth=None if geometry is None else np.ascontiguousarray(geometry[..., 3]),
            normals=None if geometry is None else np.ascontiguousarray(geometry[..., :3]),
            labels=labels_out,
        )

    @staticmethod
    def _check_faces(faces, num_vertices: int) -> np.ndarray:
        faces = _to_numpy(faces, "faces")
        if faces.ndim != 2 or faces.shape[1] != 3:
            raise InvalidInputError(f"faces must have shape (F, 3), got {tuple(faces.shape)}")
        if not np.issubdtype(faces.dtype, np.integer):
            raise InvalidInputError(f"faces must be integers, got dtype {faces.dtype}")
        if faces.size and (faces.min() < 0 or faces.max() >= num_vertices):
            raise InvalidInputError(
                f"face indices out of range [0, {num_vertices}): "
                f"min {faces.min()}, max {faces.max()}"
            )
        return faces.astype(np.int64, copy=False)

    @staticmethod
    def _check_labels(vertex_labels, num_vertices: int) -> np.ndarray:
        """(V,) uint32 labels in [1, MAX_LABEL); default all 1."""
        if vertex_labels is None:
            return np.ones(num_vertices, np.uint32)
        labels = _to_numpy(vertex_labels, "vertex_labels")
        if labels.shape != (num_vertices,):
            raise InvalidInputError(
                f"vertex_labels must have shape ({num_vertices},), got {tuple(labels.shape)}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise InvalidInputError(f"vertex_labels must be integers, got dtype {labels.dtype}")
        if labels.size and (labels.min() < 1 or labels.max() >= MAX_LABEL):
            raise InvalidInputError(
                f"vertex_labels must be in [1, {MAX_LABEL}) (0 is the background), "
                f"got min {labels.min()}, max {labels.max()}"
            )
        return labels.astype(np.uint32)
