"""Tests for signgen.render: PinholeCamera conventions and the headless MeshRenderer."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

from signgen.render import MeshRenderer, PinholeCamera, RenderOutput

SIZES = [(64, 64), (272, 224), (97, 61)]


def icosphere(subdivisions: int = 2, radius: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(V, 3) vertices and outward-wound (F, 3) faces of a unit-ish icosphere."""
    t = (1.0 + 5**0.5) / 2.0
    verts = [
        (-1, t, 0), (1, t, 0), (-1, -t, 0), (1, -t, 0),
        (0, -1, t), (0, 1, t), (0, -1, -t), (0, 1, -t),
        (t, 0, -1), (t, 0, 1), (-t, 0, -1), (-t, 0, 1),
    ]  # fmt: skip
    faces = [
        (0, 11, 5), (0, 5, 1), (0, 1, 7), (0, 7, 10), (0, 10, 11),
        (1, 5, 9), (5, 11, 4), (11, 10, 2), (10, 7, 6), (7, 1, 8),
        (3, 9, 4), (3, 4, 2), (3, 2, 6), (3, 6, 8), (3, 8, 9),
        (4, 9, 5), (2, 4, 11), (6, 2, 10), (8, 6, 7), (9, 8, 1),
    ]  # fmt: skip
    verts = [np.array(v, float) / np.linalg.norm(v) for v in verts]

    def midpoint(a: int, b: int, cache: dict[tuple[int, int], int]) -> int:
        key = (min(a, b), max(a, b))
        if key not in cache:
            mid = verts[a] + verts[b]
            verts.append(mid / np.linalg.norm(mid))
            cache[key] = len(verts) - 1
        return cache[key]

    for _ in range(subdivisions):
        cache: dict[tuple[int, int], int] = {}
        new_faces = []
        for a, b, c in faces:
            ab, bc, ca = midpoint(a, b, cache), midpoint(b, c, cache), midpoint(c, a, cache)
            new_faces += [(a, ab, ca), (b, bc, ab), (c, ca, bc), (ab, bc, ca)]
        faces = new_faces
    return np.array(verts) * radius, np.array(faces, np.int64)


def quad(center, u_axis, v_axis) -> tuple[np.ndarray, np.ndarray]:
    """A parallelogram centre +- u_axis +- v_axis as two triangles wound (u x v)-facing."""
    c, u, v = (np.asarray(x, float) for x in (center, u_axis, v_axis))
    verts = np.stack([c - u - v, c + u - v, c + u + v, c - u + v])
    return verts, np.array([[0, 1, 2], [0, 2, 3]])


def skewed_camera(width: int, height: int) -> PinholeCamera:
    """An off-axis camera with fx != fy and an off-centre principal point."""
    cam = PinholeCamera.look_at(width, height, eye=(0.6, 0.9, 2.0), target=(0.1, 0.2, 0.0))
    return dataclasses.replace(cam, fx=cam.fx * 1.15, cx=cam.cx + 5.3, cy=cam.cy - 3.7)


def cross2(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """z component of the cross product of (..., 2) vectors."""
    return a[..., 0] * b[..., 1] - a[..., 1] * b[..., 0]


def pixel_grid(height: int, width: int) -> np.ndarray:
    """(H, W, 2) pixel-centre coordinates (u, v) = (column, row)."""
    rows, cols = np.mgrid[0:height, 0:width].astype(float)
    return np.stack([cols, rows], -1)


def triangle_coverage(tri_uv: np.ndarray, height: int, width: int, margin: float):
    """Pixel centres strictly inside a projected triangle, and those within ``margin`` px of
    an edge (where GL's sub-pixel snapping may decide either way)."""
    q = pixel_grid(height, width)
    inside = np.ones((height, width), bool)
    near_edge = np.zeros((height, width), bool)
    area = cross2(tri_uv[1] - tri_uv[0], tri_uv[2] - tri_uv[0])
    for k in range(3):
        a, b = tri_uv[k], tri_uv[(k + 1) % 3]
        signed = cross2(b - a, q - a) * np.sign(area) / np.linalg.norm(b - a)
        inside &= signed > 0
        near_edge |= np.abs(signed) < margin
    return inside, near_edge


# --------------------------------------------------------------------------- camera


def test_frontal_defaults_and_orientation():
    cam = PinholeCamera.frontal(128, 96)
    np.testing.assert_allclose(cam.translation, -cam.rotation @ np.array([0.0, 0.1, 2.2]))
    uv, depth = cam.project(np.array([[0.0, 0.1, 0.0], [0.3, 0.1, 0.0], [0.0, 0.4, 0.0]]))
    np.testing.assert_allclose(uv[0], [63.5, 47.5])
    np.testing.assert_allclose(depth, 2.2)
    assert uv[1, 0] > 63.5 and uv[1, 1] == pytest.approx(47.5)  # body's left (+X): image right
    assert uv[2, 1] < 47.5 and uv[2, 0] == pytest.approx(63.5)  # world up: image up


@pytest.mark.parametrize("size", [(64, 64), (272, 224), (224, 272), (512, 512)])
def test_frontal_frames_upper_body(size):
    # Hips to above the head, hands 0.6 m either side of the midline and towards the camera.
    points = np.array(
        [
            [0.0, -0.45, 0.0],
            [0.0, 0.65, 0.0],
            [0.6, 0.1, 0.3],
            [-0.6, 0.1, 0.3],
            [0.6, 0.5, 0.2],
            [-0.6, -0.3, 0.2],
        ]
    )
    cam = PinholeCamera.frontal(*size)
    uv, depth = cam.project(points)
    assert np.all(depth > 0)
    assert np.all(uv >= -0.5) and np.all(uv[:, 0] <= size[0] - 0.5)
    assert np.all(uv[:, 1] <= size[1] - 0.5)


def test_project_matches_intrinsics_and_torch():
    cam = skewed_camera(272, 224)
    points = np.random.default_rng(0).normal(size=(4, 5, 3)) * 0.3
    uv, depth = cam.project(points)
    assert uv.shape == (4, 5, 2) and depth.shape == (4, 5)
    homogeneous = cam.world_to_camera(points) @ cam.intrinsics_matrix().T
    np.testing.assert_allclose(uv, homogeneous[..., :2] / homogeneous[..., 2:])
    np.testing.assert_allclose(depth, homogeneous[..., 2])

    tensor = torch.tensor(points, dtype=torch.float32, requires_grad=True)
    uv_t, depth_t = cam.project(tensor)
    assert isinstance(uv_t, torch.Tensor) and uv_t.dtype == torch.float32
    np.testing.assert_allclose(uv_t.detach().numpy(), uv, rtol=1e-5, atol=1e-3)
    (uv_t.sum() + depth_t.sum()).backward()
    assert tensor.grad is not None and torch.isfinite(tensor.grad).all()


def test_opengl_matrices_match_project():
    cam = skewed_camera(97, 61)
    points = np.random.default_rng(1).normal(size=(50, 3)) * 0.4
    clip = (cam.opengl_projection(0.1, 20.0) @ cam.view_matrix() @ np.c_[points, np.ones(50)].T).T
    ndc = clip[:, :3] / clip[:, 3:]
    # GL window coordinates: pixel centres at +0.5, rows counted from the bottom.
    u = (ndc[:, 0] + 1) / 2 * cam.width - 0.5
    v = cam.height - (ndc[:, 1] + 1) / 2 * cam.height - 0.5
    uv, depth = cam.project(points)
    np.testing.assert_allclose(np.c_[u, v], uv, atol=1e-9)
    np.testing.assert_allclose(clip[:, 3], depth)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, "width"),
        ({"height": 2.5}, "height"),
        ({"fx": 0.0}, "fx"),
        ({"fy": -1.0}, "fy"),
        ({"cx": float("nan")}, "cx"),
        ({"cy": float("inf")}, "cy"),
        ({"rotation": np.diag([1.0, 1.0, -1.0])}, "rotation"),
        ({"rotation": np.eye(2)}, "rotation"),
        ({"translation": [0.0, np.nan, 0.0]}, "translation"),
    ],
)
def test_camera_validation(kwargs, match):
    fields = {"width": 64, "height": 48, "fx": 50.0, "fy": 50.0, "cx": 31.5, "cy": 23.5}
    with pytest.raises(ValueError, match=match):
        PinholeCamera(**{**fields, **kwargs})


def test_look_at_validation():
    with pytest.raises(ValueError, match="target - eye"):
        PinholeCamera.look_at(64, 64, eye=(0, 0, 1), target=(0, 0, 1))
    with pytest.raises(ValueError, match="up"):
        PinholeCamera.look_at(64, 64, eye=(0, 2, 0), target=(0, 0, 0))
    with pytest.raises(ValueError, match="fov_y_deg"):
        PinholeCamera.look_at(64, 64, eye=(0, 0, 1), target=(0, 0, 0), fov_y_deg=180)
    with pytest.raises(ValueError, match="near < far"):
        PinholeCamera.frontal(64, 64).opengl_projection(1.0, 0.5)


# ------------------------------------------------------------------------- renderer


@pytest.mark.parametrize("size", SIZES)
def test_mask_matches_projected_triangles(size):
    width, height = size
    cam = skewed_camera(width, height)
    rng = np.random.default_rng(width)
    # Five frames of one random triangle each (random windings), around the target.
    verts = np.array([0.1, 0.2, 0.0]) + rng.uniform(-0.5, 0.5, size=(5, 3, 3))
    out = MeshRenderer(width, height).render(verts, np.array([[0, 1, 2]]), cam)
    for frame in range(5):
        uv, depth = cam.project(verts[frame])
        assert np.all(depth > 0)
        inside, near_edge = triangle_coverage(uv, height, width, margin=0.02)
        assert inside.sum() > 10
        assert np.array_equal(out.mask[frame] & ~near_edge, inside & ~near_edge)


def test_image_orientation_and_labels():
    cam = PinholeCamera.frontal(128, 128)
    renderer = MeshRenderer(128, 128)
    # Facing +Z like the body: one triangle on the body's left (+X), one high up (+Y).
    left, faces = quad((0.35, 0.1, 0.0), (0.1, 0, 0), (0, 0.1, 0))
    top, _ = quad((0.0, 0.5, 0.0), (0.1, 0, 0), (0, 0.1, 0))
    verts = np.concatenate([left, top])
    out = renderer.render(
        verts, np.concatenate([faces, faces + 4]), cam, vertex_labels=[7] * 4 + [9] * 4
    )
    for centre, label in ((left.mean(0), 7), (top.mean(0), 9)):
        (u, v), _ = cam.project(centre)
        assert out.labels[0, round(v), round(u)] == label
    rows, cols = np.nonzero(out.labels[0] == 7)
    assert cols.min() > 64  # body's left appears on the image right
    rows, cols = np.nonzero(out.labels[0] == 9)
    assert rows.max() < 64  # world up is image up
    assert set(np.unique(out.labels)) == {0, 7, 9}
    assert out.labels.dtype == np.int32 and out.mask.dtype == bool


def test_output_shapes_dtypes_and_background():
    renderer = MeshRenderer(272, 224, background=(0.2, 0.4, 0.6))
    out = renderer.render(
        *quad((0, 0.1, 0), (0.2, 0, 0), (0, 0.2, 0)), PinholeCamera.frontal(272, 224)
    )
    assert isinstance(out, RenderOutput)
    assert out.rgb.shape == (1, 224, 272, 3) and out.rgb.dtype == np.uint8
    assert out.depth.shape == (1, 224, 272) and out.depth.dtype == np.float32
    assert out.normals.shape == (1, 224, 272, 3) and out.normals.dtype == np.float32
    assert out.labels.shape == (1, 224, 272) and out.labels.dtype == np.int32
    background = ~out.mask
    assert background.any() and out.mask.any()
    assert np.all(out.rgb[background] == [51, 102, 153])
    assert np.all(out.depth[background] == 0) and np.all(out.normals[background] == 0)


def test_depth_and_normals_of_tilted_plane():
    cam = skewed_camera(128, 96)
    normal = np.array([0.3, 0.2, 1.0]) / np.linalg.norm([0.3, 0.2, 1.0])
    u_axis = np.cross(normal, [0, 1, 0])
    v_axis = np.cross(normal, u_axis)
    verts, faces = quad((0.1, 0.2, -0.4), 3 * u_axis, 3 * v_axis)
    out = MeshRenderer(128, 96).render(verts, faces, cam)
    assert out.mask.all()
    # Intersect each pixel's ray with the plane n . X = c in camera coordinates.
    n_cam = cam.rotation @ normal
    c = n_cam @ cam.world_to_camera(verts[0])
    q = pixel_grid(96, 128)
    rays = np.dstack(
        [(q[..., 0] - cam.cx) / cam.fx, (q[..., 1] - cam.cy) / cam.fy, np.ones((96, 128))]
    )
    np.testing.assert_allclose(out.depth[0], c / (rays @ n_cam), atol=1e-3)
    assert n_cam @ cam.world_to_camera(verts[0]) < 0  # the plane faces the camera
    np.testing.assert_allclose(out.normals[0], np.broadcast_to(n_cam, (96, 128, 3)), atol=1e-4)


@pytest.mark.parametrize("flip_winding", [False, True])
def test_plane_facing_camera_depth_normals_and_shading(flip_winding):
    cam = PinholeCamera.frontal(64, 64)
    verts, faces = quad((0.0, 0.1, -0.3), (0.1, 0, 0), (0, 0.1, 0))  # 2.5 m from the eye
    if flip_winding:  # seen from behind: must be shaded and reported as facing the camera
        faces = faces[:, ::-1]
    renderer = MeshRenderer(64, 64)
    out = renderer.render(verts, faces, cam, vertex_colors=np.full((4, 3), 0.5))
    mask = out.mask[0]
    np.testing.assert_allclose(out.depth[0][mask], 2.5, atol=1e-3)
    np.testing.assert_allclose(
        out.normals[0][mask], np.broadcast_to([0, 0, -1], (mask.sum(), 3)), atol=1e-5
    )
    lambert = max(0.0, -renderer.light_direction[2])
    expected = 255 * 0.5 * (renderer.ambient + (1 - renderer.ambient) * lambert)
    assert np.all(np.abs(out.rgb[0][mask].astype(float) - expected) <= 1)


def test_culling_drops_triangles_seen_from_behind_and_geometry_can_be_skipped():
    cam = PinholeCamera.frontal(64, 64)
    verts, faces = quad((0.0, 0.1, -0.3), (0.1, 0, 0), (0, 0.1, 0))
    culling = MeshRenderer(64, 64, cull_back_faces=True, geometry=False)
    front = culling.render(verts, faces, cam)
    assert front.mask.any() and front.depth is None and front.normals is None
    full = MeshRenderer(64, 64).render(verts, faces, cam)
    assert front.rgb.tobytes() == full.rgb.tobytes()
    assert np.array_equal(front.labels, full.labels)
    back = culling.render(verts, faces[:, ::-1], cam)  # seen from behind: culled
    assert not back.mask.any() and np.all(back.rgb == 255)
    # A closed surface looks the same either way; the shared GL state is reset after.
    sphere_v, sphere_f = icosphere(2, radius=0.3)
    assert (culling.render(sphere_v, sphere_f, cam).rgb.tobytes()
            == MeshRenderer(64, 64).render(sphere_v, sphere_f, cam).rgb.tobytes())
    assert MeshRenderer(64, 64).render(verts, faces[:, ::-1], cam).mask.any()


def test_nearer_surface_occludes_farther():
    cam = PinholeCamera.frontal(64, 64)
    near_v, faces = quad((0.0, 0.1, 0.2), (0.1, 0, 0), (0, 0.1, 0))
    far_v, _ = quad((0.05, 0.1, -0.2), (0.2, 0, 0), (0, 0.2, 0))
    labels = np.array([1] * 4 + [2] * 4)
    renderer = MeshRenderer(64, 64)
    for verts, labels_order in (
        (np.concatenate([near_v, far_v]), labels),
        (np.concatenate([far_v, near_v]), labels[::-1]),  # drawing order must not matter
    ):
        out = renderer.render(
            verts, np.concatenate([faces, faces + 4]), cam, vertex_labels=labels_order
        )
        (u, v), depth = cam.project(near_v.mean(0))
        assert out.labels[0, round(v), round(u)] == 1
        assert out.depth[0, round(v), round(u)] == pytest.approx(depth, abs=1e-3)
        assert (out.labels == 2).sum() > (out.labels == 1).sum() > 0


def test_sphere_is_deterministic_and_batch_equals_singles():
    verts, faces = icosphere(2, radius=0.3)
    frames = np.stack([verts, verts * 0.8 + [0.2, 0.1, 0.1], verts * [1.2, 0.9, 1.0] - [0.2, 0, 0]])
    colors = np.random.default_rng(2).uniform(size=(3, len(verts), 3))
    labels = 1 + np.arange(len(verts)) % 5
    cam = PinholeCamera.frontal(128, 128)
    renderer = MeshRenderer(128, 128)
    batch = renderer.render(frames, faces, cam, vertex_colors=colors, vertex_labels=labels)
    again = MeshRenderer(128, 128).render(
        frames, faces, cam, vertex_colors=colors, vertex_labels=labels
    )
    assert batch.rgb.tobytes() == again.rgb.tobytes()
    for b in range(3):
        single = renderer.render(
            frames[b], faces, cam, vertex_colors=colors[b], vertex_labels=labels
        )
        for name in ("rgb", "depth", "normals", "labels"):
            np.testing.assert_array_equal(getattr(batch, name)[b], getattr(single, name)[0])
    assert not np.array_equal(batch.rgb[0], batch.rgb[1])
    # Smooth normals: unit length, and the silhouette centre faces the camera.
    norms = np.linalg.norm(batch.normals[0][batch.mask[0]], axis=-1)
    np.testing.assert_allclose(norms, 1.0, atol=1e-5)
    (u, v), depth = cam.project(np.array([0.0, 0.0, 0.3]))
    assert batch.normals[0, round(v), round(u), 2] < -0.99
    assert batch.depth[0, round(v), round(u)] == pytest.approx(depth, abs=0.01)


def test_torch_inputs_and_buffer_growth():
    cam = PinholeCamera.frontal(64, 64)
    renderer = MeshRenderer(64, 64)
    small_v, small_f = quad((0.0, 0.1, 0.0), (0.2, 0, 0), (0, 0.2, 0))
    first = renderer.render(small_v, small_f, cam)
    big_v, big_f = icosphere(3, radius=0.4)  # larger buffers than the quad's
    big = renderer.render(torch.tensor(big_v, dtype=torch.float32), torch.tensor(big_f), cam)
    assert big.mask.sum() > first.mask.sum()
    assert renderer.render(torch.tensor(small_v), small_f, cam).rgb.tobytes() == first.rgb.tobytes()
    # No faces: background only.
    empty = renderer.render(small_v, np.zeros((0, 3), np.int64), cam)
    assert not empty.mask.any() and np.all(empty.rgb == 255)


def test_vertex_normals_sum_area_weighted_face_normals():
    from signgen.render.mesh_renderer import vertex_normals

    verts, faces = icosphere(1, radius=0.3)
    rng = np.random.default_rng(0)
    batch = verts[None] + rng.normal(scale=0.02, size=(3, *verts.shape))
    batch[:, 0] = batch[:, 1]  # a degenerate face or two; vertex 0 keeps others
    expected = np.zeros_like(batch)
    for b in range(3):
        for face in faces:
            a, c, d = batch[b, face]
            expected[b, face] += np.cross(c - a, d - a)
    expected /= np.linalg.norm(expected, axis=-1, keepdims=True)
    normals = vertex_normals(batch, faces)
    assert normals.shape == batch.shape and normals.dtype == np.float64
    np.testing.assert_allclose(normals, expected, atol=1e-12)
    lonely = np.concatenate([batch, np.zeros((3, 1, 3))], axis=1)  # in no face
    assert np.all(vertex_normals(lonely, faces)[:, -1] == 0)


def test_warm_up_then_render_gives_the_same_frames():
    from signgen.render.mesh_renderer import warm_up

    cam = PinholeCamera.frontal(64, 64)
    verts, faces = icosphere(1, radius=0.3)
    before = MeshRenderer(64, 64).render(verts, faces, cam).rgb
    warm_up()
    warm_up()  # idempotent
    assert MeshRenderer(64, 64).render(verts, faces, cam).rgb.tobytes() == before.tobytes()


def test_render_from_other_thread_matches():
    cam = PinholeCamera.frontal(64, 64)
    verts, faces = icosphere(1, radius=0.3)
    renderer = MeshRenderer(64, 64)
    expected = renderer.render(verts, faces, cam).rgb
    results = []
    threads = [
        threading.Thread(target=lambda: results.append(renderer.render(verts, faces, cam).rgb))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 3 and all(r.tobytes() == expected.tobytes() for r in results)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_after_rendering_raises_instead_of_hanging():
    cam = PinholeCamera.frontal(32, 32)
    renderer = MeshRenderer(32, 32)
    verts, faces = quad((0.0, 0.1, 0.0), (0.2, 0, 0), (0, 0.2, 0))
    renderer.render(verts, faces, cam)  # the parent now owns an EGL context
    pid = os.fork()
    if pid == 0:  # child: report through the exit status only
        code = 3
        try:
            renderer.render(verts, faces, cam)
        except RuntimeError as err:
            code = 0 if "spawn" in str(err) else 2
        finally:
            os._exit(code)
    deadline = time.monotonic() + 20
    while (status := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    if status[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("forked child hung")
    assert os.waitstatus_to_exitcode(status[1]) == 0
    assert renderer.render(verts, faces, cam).mask.any()  # the parent still renders


@pytest.mark.parametrize(
    ("override", "match"),
    [
        ({"vertices": np.zeros((4, 2))}, r"vertices must have shape \(V, 3\)"),
        ({"vertices": np.zeros((2, 3, 4, 3))}, "vertices must have shape"),
        ({"vertices": np.full((4, 3), np.nan)}, "vertices contains NaN or inf"),
        ({"vertices": np.array([[0, 0, np.inf]] * 4)}, "vertices contains NaN or inf"),
        ({"faces": np.array([[0, 1, 4]])}, "face indices out of range"),
        ({"faces": np.array([[0, -1, 2]])}, "face indices out of range"),
        ({"faces": np.array([[0.0, 1.0, 2.0]])}, "faces must be integers"),
        ({"faces": np.array([0, 1, 2])}, r"faces must have shape \(F, 3\)"),
        ({"vertex_colors": np.full((4, 3), 1.5)}, r"vertex_colors must be in \[0, 1\]"),
        ({"vertex_colors": np.full((3, 3), 0.5)}, "vertex_colors has 3 vertices, expected 4"),
        ({"vertex_colors": np.full((2, 4, 3), 0.5)}, "vertex_colors has batch size 2"),
        ({"vertex_labels": np.zeros(4, int)}, "vertex_labels must be in"),
        ({"vertex_labels": np.full(4, 70000)}, "vertex_labels must be in"),
        ({"vertex_labels": np.ones(3, int)}, "vertex_labels must have shape"),
        ({"vertex_labels": np.ones(4)}, "vertex_labels must be integers"),
        ({"camera": PinholeCamera.frontal(32, 16)}, "does not match renderer size"),
        ({"camera": "frontal"}, "camera must be a PinholeCamera"),
    ],
)
def test_render_rejects_bad_input(override, match):
    verts, faces = quad((0.0, 0.1, 0.0), (0.2, 0, 0), (0, 0.2, 0))
    args = {"vertices": verts, "faces": faces, "camera": PinholeCamera.frontal(32, 32)}
    with pytest.raises(ValueError, match=match):
        MeshRenderer(32, 32).render(**{**args, **override})


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"width": 0}, "width"),
        ({"height": 1.5}, "height"),
        ({"background": (1.0, 1.0)}, "background"),
        ({"background": (1.0, 2.0, 0.0)}, "background"),
        ({"ambient": -0.1}, "ambient"),
        ({"light_direction": (0.0, 0.0, 0.0)}, "light_direction"),
        ({"near": 0.0}, "near"),
    ],
)
def test_renderer_rejects_bad_settings(kwargs, match):
    with pytest.raises(ValueError, match=match):
        MeshRenderer(**{"width": 32, "height": 32, **kwargs})
