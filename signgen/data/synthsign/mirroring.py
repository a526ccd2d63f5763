"""Canonical handedness: a left-handed signer's sample re-rendered as its mirror image.

SynthSign's left-handed signers sign every sign mirrored. A translator that learns the
tokens of the conditions as they are must learn every sign twice, once per hand, from
less data for the left hand. With canonical handedness the tokeniser
(``python -m signgen.data.tokens --canonical-handedness``) encodes a left-handed
signer's sample from the conditions of its mirror image (a right-handed signer making
the same signs), and the pipeline mirrors the decoded output back for that signer.

The mirror image is exact, not a flipped picture: the SMPL-X pose is mirrored
(:mod:`signgen.body.mirror`), the body posed with it, and the pose map and hand render
drawn again as the generator draws them (a flipped pose map would keep the left limbs'
colours on the right-hand side, and a flipped normal render the wrong normals).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from signgen.errors import DataError, SignGenError


def left_handed_signers(dataset_root: str | Path) -> list[str]:
    """Sorted ids of the left-handed signers in ``signers.json`` of a SynthSign folder;
    SignGenError for a corpus that does not record handedness."""
    path = Path(dataset_root) / "signers.json"
    signers = json.loads(path.read_text()) if path.is_file() else None
    if not signers or any("handedness" not in s for s in signers):
        raise SignGenError(f"{dataset_root} does not record its signers' handedness "
                           f"({path}); canonical handedness needs it (SynthSign records "
                           f"it; a real corpus does not)")
    return sorted(s["signer_id"] for s in signers if s["handedness"] == "left")


class ConditionMirror:
    """Draws the mirror image of a SynthSign sample's conditions.

    ``dataset_root``: a generated SynthSign folder (its ``meta.json`` names the body
    model, frame size and camera the sample was rendered with)."""

    def __init__(self, dataset_root: str | Path) -> None:
        from omegaconf import OmegaConf

        from signgen.body import BodyModel
        from signgen.data.synthsign.signers import signing_camera
        from signgen.render import MeshRenderer

        self.root = Path(dataset_root)
        meta = json.loads((self.root / "meta.json").read_text())
        if "config" not in meta:
            raise SignGenError(f"{self.root}/meta.json does not record the config the "
                               f"corpus was rendered with: it cannot be re-rendered")
        body = OmegaConf.create(meta["config"]).body
        self.body = BodyModel(body.model_dir, body.gender, body.num_betas,
                              body.num_expression).eval()
        self.height, self.width = int(meta["height"]), int(meta["width"])
        self.camera = signing_camera(self.width, self.height)
        self.renderer = MeshRenderer(self.width, self.height)

    @torch.no_grad()
    def render(self, sample_id: str) -> dict[str, np.ndarray]:
        """The mirrored sample: pose_map and hand_render (T,H,W,3) uint8, poses (T,165)
        float32 axis-angle, keypoints (T,133,2) float32 pixels, visible (T,133) bool."""
        from signgen.body import SMPLXParams
        from signgen.body.mirror import mirror_full_pose, mirror_transl
        from signgen.data.synthsign.conditions import (
            draw_pose_map,
            project_keypoints,
            render_hands,
        )
        from signgen.data.synthsign.dataset import read_npz

        with read_npz(self.root / "samples" / sample_id / "motion.npz") as motion:
            poses = mirror_full_pose(motion["poses"])
            transl = mirror_transl(motion["transl"])
            betas, expression = motion["betas"], motion["expression"]
        if not np.isfinite(poses).all():
            raise DataError(f"sample {sample_id} has NaN or infinite poses")
        params = SMPLXParams.from_full_pose(torch.from_numpy(poses), torch.from_numpy(betas),
                                            torch.from_numpy(expression),
                                            torch.from_numpy(transl))
        out = self.body(params)
        keypoints, visible = project_keypoints(out.joints.numpy(), self.camera)
        return {
            "pose_map": draw_pose_map(keypoints, visible, self.height, self.width),
            "hand_render": render_hands(out.vertices.numpy(), self.body, self.camera,
                                        self.renderer),
            "poses": poses.astype(np.float32), "keypoints": keypoints, "visible": visible,
        }
