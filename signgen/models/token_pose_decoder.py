"""Token pose decoder: FSQ token sequences -> SMPL-X pose and keypoints, reading each
frame with its neighbours (the avatar path).

The FSQ autoencoder's own pose head reads one frame's tokens alone and is trained beside
the embedding reconstruction that shapes the tokens. This model is trained afterwards on
the frozen FSQ's tokens (``python train.py --stage pose_decoder``), so the token space,
and every translator trained on it, stays valid; it starts as a copy of the FSQ's pose
path and adds temporal context over the frames::

    indices (N,S) --FSQ.indices_to_codes--> codes (N,D,gh,gw)
      --1x1, res block [, the FSQ's temporal conv]--> (N,C,gh,gw)   (copied from the FSQ)
      --pose trunk (MLP)--> hidden (N,H)                            (copied from the FSQ)
      --temporal_layers x [hidden + 1x1(SiLU(conv_k over frames(SiLU(hidden))))]-->
      --heads (copied)--> 6D rotations -> SMPL-X full pose (N,165); keypoints (N,133,2)

The temporal blocks are zero-initialised residuals (:meth:`from_fsq` starts exactly at
the FSQ's pose head) and pad by repeating the edge frames. Rows are clip-major as in
``FSQAutoencoder``: row ``b*F + f`` is frame f of clip b, ``num_frames`` = F (None: the
batch is one clip); or clips of different lengths one after the other, ``lengths`` (each
read as alone: the pipeline decodes its sampled candidates in one call). Outputs are
those of ``FSQAutoencoder.decode`` without the embedding (``FSQDecoderOutput``), in
float32.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from einops import rearrange
from torch import nn
from vector_quantize_pytorch import FSQ

from signgen.errors import InvalidInputError
from signgen.models.fsq_autoencoder import (
    NUM_KEYPOINTS,
    FSQDecoderOutput,
    _ResBlock,
    _TemporalConv,
    clip_length,
    indices_to_code_grid,
    pose_heads,
    pose_outputs,
)
from signgen.precision import float32

#: The parameters :meth:`TokenPoseDecoder.from_fsq` copies, by their FSQ names (the
#: FSQ's ``decoder_temporal`` too when it has temporal context).
COPIED_PARTS = ("from_code", "pose_trunk", "to_rotations", "to_keypoints")


class _FrameBlock(nn.Module):
    """Residual block over the frames of each clip on (N,H) rows:
    x + 1x1(SiLU(conv_k(SiLU(x)))), the 1x1 zero-initialised, edge frames repeated.
    ``separable``: conv_k is a depthwise conv over frames followed by a 1x1 (H*k + H*H
    weights instead of H*H*k: about a third of the compute at k = 5)."""

    def __init__(self, width: int, kernel: int, separable: bool = False) -> None:
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=kernel // 2,
                              padding_mode="replicate", groups=width if separable else 1)
        self.mix = nn.Conv1d(width, width, 1) if separable else nn.Identity()
        self.out = nn.Conv1d(width, width, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = rearrange(x, "(b f) c -> b c f", f=num_frames)
        y = self.out(F.silu(self.mix(self.conv(F.silu(y)))))
        return x + rearrange(y, "b c f -> (b f) c")


class TokenPoseDecoder(ModelMixin, ConfigMixin):
    """FSQ token indices -> SMPL-X pose and COCO-WholeBody keypoints, with temporal context.

    Args:
        levels: the FSQ levels of the token space (``codebook_size`` = their product).
        token_grid: (gh, gw) tokens per frame, row-major.
        channels: C, width of the decoded token-grid features (the FSQ's last
            ``hidden_channels``).
        pose_hidden: H, width of the pose trunk.
        fsq_temporal_kernel: the FSQ decoder's temporal conv kernel (1 = none), copied.
        temporal_kernel: odd kernel of the frame blocks (frames each side: kernel // 2
            per block).
        temporal_layers: number of frame blocks (0 = the FSQ's per-frame head).
        separable_frame_blocks: depthwise + 1x1 frame convs instead of full ones (see
            ``_FrameBlock``).
    """

    @register_to_config
    def __init__(self, levels: Sequence[int] = (5, 5, 5, 5), token_grid: Sequence[int] = (4, 4),
                 channels: int = 128, pose_hidden: int = 512, fsq_temporal_kernel: int = 1,
                 temporal_kernel: int = 5, temporal_layers: int = 2,
                 separable_frame_blocks: bool = False) -> None:
        super().__init__()
        levels, grid = list(levels), list(token_grid)
        if not levels or min(levels) < 3:
            raise InvalidInputError(f"FSQ levels must each be >= 3, got {levels}")
        if len(grid) != 2 or min(grid) < 1 or channels < 1 or pose_hidden < 1:
            raise InvalidInputError(f"need token_grid (gh, gw) >= 1, channels and pose_hidden "
                                    f">= 1, got {grid}, {channels}, {pose_hidden}")
        for name, kernel in (("temporal_kernel", temporal_kernel),
                             ("fsq_temporal_kernel", fsq_temporal_kernel)):
            if kernel < 1 or kernel % 2 == 0:
                raise InvalidInputError(f"{name} must be odd and >= 1, got {kernel}")
        if temporal_layers < 0:
            raise InvalidInputError(f"temporal_layers must be >= 0, got {temporal_layers}")
        self.quantizer = FSQ(levels=levels, dim=len(levels))
        self.from_code = nn.Sequential(nn.Conv2d(len(levels), channels, 1), _ResBlock(channels))
        if fsq_temporal_kernel > 1:
            self.decoder_temporal = _TemporalConv(channels, fsq_temporal_kernel)
        self.pose_trunk = nn.Sequential(
            nn.Flatten(), nn.Linear(channels * grid[0] * grid[1], pose_hidden), nn.SiLU(),
            nn.Linear(pose_hidden, pose_hidden), nn.SiLU())
        self.frame_blocks = nn.ModuleList(
            _FrameBlock(pose_hidden, temporal_kernel, separable_frame_blocks)
            for _ in range(temporal_layers))
        self.to_rotations, self.to_keypoints = pose_heads(pose_hidden)

    @classmethod
    def from_fsq(cls, fsq, temporal_kernel: int = 5, temporal_layers: int = 2,
                 separable_frame_blocks: bool = False) -> TokenPoseDecoder:
        """A decoder of ``fsq``'s token space (an ``FSQAutoencoder``) whose output equals
        ``fsq.decode(fsq.decode_indices(indices)).smplx_pose`` / ``.keypoints`` until it
        is trained (the frame blocks start at zero)."""
        config = fsq.config
        model = cls(levels=list(config.levels), token_grid=list(fsq.token_grid),
                    channels=list(config.hidden_channels)[-1], pose_hidden=config.pose_hidden,
                    fsq_temporal_kernel=config.temporal_kernel,
                    temporal_kernel=temporal_kernel, temporal_layers=temporal_layers,
                    separable_frame_blocks=separable_frame_blocks)
        parts = (*COPIED_PARTS, *(("decoder_temporal",) if config.temporal_kernel > 1 else ()))
        for name in parts:
            getattr(model, name).load_state_dict(getattr(fsq, name).state_dict())
        return model

    def token_features(self) -> nn.ModuleList:
        """The parts that turn codes into token-grid features (N,C,gh,gw): ``from_code``
        and, when the FSQ has one, ``decoder_temporal``; what comes after them reads one
        vector per frame."""
        parts = [self.from_code]
        if self.config.fsq_temporal_kernel > 1:
            parts.append(self.decoder_temporal)
        return nn.ModuleList(parts)

    @property
    def tokens_per_frame(self) -> int:
        gh, gw = self.config.token_grid
        return gh * gw

    @property
    def codebook_size(self) -> int:
        return math.prod(self.config.levels)

    def forward(self, indices: torch.Tensor, num_frames: int | None = None,
                lengths: Sequence[int] | None = None, pose: bool = True) -> FSQDecoderOutput:
        """indices (N,S) integer in [0, codebook_size), clip-major rows -> smplx_pose
        (N,165) axis-angle, keypoints (N,133,2) normalised to the frame, rotations
        (N,53,3,3); ``embedding`` is None.

        ``lengths``: instead of ``num_frames``, clips of different lengths, one after the
        other (B,) frames each, summing to N: each reads as it would alone (up to float
        rounding; see :func:`_edge_gaps`). ``pose`` False: keypoints only (smplx_pose and
        rotations None), the same keypoints."""
        codes = indices_to_code_grid(self.quantizer, indices, self.config.token_grid,
                                     self.device).float()  # (N,D,gh,gw)
        if lengths is not None and num_frames is not None:
            raise InvalidInputError("give num_frames or lengths, not both")
        over_frames = (_clips(clip_length(indices.shape[0], num_frames)) if lengths is None
                       else _ragged(lengths, indices.shape[0], codes.device))
        with float32(self.device):
            features = self.from_code(codes)
            if self.config.fsq_temporal_kernel > 1:
                features = over_frames(self.decoder_temporal, features,
                                       self.config.fsq_temporal_kernel // 2)
            hidden = self.pose_trunk(features)
            for block in self.frame_blocks:
                hidden = over_frames(block, hidden, self.config.temporal_kernel // 2)
            if not pose:
                return FSQDecoderOutput(
                    smplx_pose=None, rotations=None,
                    keypoints=self.to_keypoints(hidden).view(len(hidden), NUM_KEYPOINTS, 2))
            return pose_outputs(hidden, self.to_rotations, self.to_keypoints)


def _clips(frames: int):
    """``module(x, num_frames)`` over frames for clips of ``frames`` rows each: a function
    (module, x (N,...), reach) -> (N,...) (see :func:`_ragged`)."""
    def over_frames(module: nn.Module, x: torch.Tensor, reach: int) -> torch.Tensor:
        return module(x, frames)

    return over_frames


def _ragged(lengths: Sequence[int], n: int, device: torch.device):
    """``module(x, num_frames)`` over frames for n rows that are clips of ``lengths``
    frames one after the other: a function (module, x (N,...), reach) -> (N,...)."""
    lengths = [int(length) for length in lengths]
    if not lengths or min(lengths) < 1 or sum(lengths) != n:
        raise InvalidInputError(f"lengths must be >= 1 and sum to the {n} rows, got "
                                f"{lengths}")

    def over_frames(module: nn.Module, x: torch.Tensor, reach: int) -> torch.Tensor:
        rows, real = _edge_gaps(lengths, reach, device)
        return module(x.index_select(0, rows), len(rows)).index_select(0, real)

    return over_frames


def _edge_gaps(lengths: list[int], reach: int, device: torch.device
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """Clips of ``lengths`` frames (rows one after the other) as one sequence for a conv
    over frames that reaches ``reach`` frames each side and repeats the edge frames:
    each clip gets ``reach`` copies of its first row before it and of its last after it,
    so that no real row's window leaves its clip and each sees what the edge padding of
    that clip alone would give. -> rows (M,) long, the source row of each row of that
    sequence, and real (N,) long, where each input row lies in it."""
    rows, real, start, at = [], [], 0, 0
    for length in lengths:
        clip = torch.arange(start, start + length)
        rows += [clip[:1].expand(reach), clip, clip[-1:].expand(reach)]
        real.append(torch.arange(at + reach, at + reach + length))
        start, at = start + length, at + length + 2 * reach
    return torch.cat(rows).to(device), torch.cat(real).to(device)
