"""Benchmark: body-model posing and mesh rendering speed on this machine.

    python benchmarks/render_speed.py [--frames 200] [--out benchmarks/results]

Poses the body model (stand-in unless SMPLX_MODEL_DIR is set) through smplx with a
different pose every frame, renders RGB + depth + normals + labels, and writes
``render__cpu.json`` and ``render__cpu.md``. Numbers are wall-clock on whatever runs it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from signgen.body import BodyModel
from signgen.render import MeshRenderer, PinholeCamera
from signgen.render.appearance import region_vertex_colors
from signgen.render.preview import preview_params


def wobbling_params(body: BodyModel, frames: int):
    """The preview's signing pose with a different small perturbation per frame."""
    base = preview_params(body)
    params = body.zero_params(frames)
    gen = torch.Generator().manual_seed(0)
    for name in ("body_pose", "right_hand_pose", "left_hand_pose"):
        value = getattr(base, name)[1:2].expand(frames, -1)
        setattr(params, name, value + 0.05 * torch.randn(value.shape, generator=gen))
    return params


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    body = BodyModel()
    params = wobbling_params(body, args.frames)
    with torch.no_grad():
        body(params)  # warm-up
        start = time.perf_counter()
        verts = body(params).vertices.numpy()
        pose_s = time.perf_counter() - start
    colours = region_vertex_colors(body.vertex_regions.numpy(), body.region_names)
    labels = body.vertex_joint_labels().numpy() + 1
    faces = body.faces.numpy()
    rows = []
    for size in (128, 256):
        renderer = MeshRenderer(size, size)
        camera = PinholeCamera.frontal(size, size)
        renderer.render(verts[:2], faces, camera, vertex_colors=colours, vertex_labels=labels)
        start = time.perf_counter()
        renderer.render(verts, faces, camera, vertex_colors=colours, vertex_labels=labels)
        seconds = time.perf_counter() - start
        rows.append({"size": f"{size}x{size}", "frames": args.frames,
                     "render_fps": round(args.frames / seconds, 1)})
    result = {
        "benchmark": "render_speed",
        "machine": {"cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "processor": platform.processor() or platform.machine()},
        "torch": torch.__version__,
        "mesh": {"vertices": body.num_vertices, "faces": int(faces.shape[0]),
                 "standin": body.is_standin},
        "posing_fps": round(args.frames / pose_s, 1),
        "render": rows,
        "command": f"python benchmarks/render_speed.py --frames {args.frames}",
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "render__cpu.json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [
        f"Mesh: {body.num_vertices} vertices, {faces.shape[0]} faces; {os.cpu_count()} CPU "
        f"cores; posing (smplx, batch {args.frames}): {result['posing_fps']} frames/s.", "",
        "| size | frames | render fps (RGB+depth+normals+labels) |", "|---|---|---|",
        *[f"| {r['size']} | {r['frames']} | {r['render_fps']} |" for r in rows],
    ]
    (out / "render__cpu.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
