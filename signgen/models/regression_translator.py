"""Text -> SMPL-X pose by continuous regression: the Progressive-Transformers baseline of
issue #7 (Saunders et al., "Progressive Transformers for End-to-End Sign Language
Production", ECCV 2020), on SMPL-X rotations instead of skeleton joints.

The text side is ``SignTranslator``'s (same ids with a leading sign-language tag, same
encoder); the decoder is its ``DecoderLayer`` stack with its ``KVCache``, but a frame's
input is the previous frame's pose through a linear projection and its output is the
next frame's pose plus a progress counter. Shapes:

    text_ids   (B,L) int64 in [0, vocab_size), pad_id where ``text_mask`` is False
    poses      (B,T,POSE_DIM) float: the articulated pose, ``POSE_JOINTS`` as 6-D rotations
               (``poses_to_6d`` of the (T,165) axis-angle layout)
    output     poses (B,T,POSE_DIM): position t predicts frame t+1 (position 0 sees the
               learned start frame); counter (B,T) in (0,1): frame t+1's progress
               (t+1)/T, Progressive Transformers' counter

Poses are standardised inside the model with train-set statistics
(``set_pose_statistics``, saved with the weights), so that Gaussian noise on the
teacher-forced inputs (PT's augmentation against drift) and the output head work in
per-dimension units. The global orientation and the eyes are not modelled (SynthSign keeps
them at zero): ``poses_from_6d`` writes zeros there.

Generation (greedy, deterministic): a sequence ends after frame t when the counter says
the sequence is t frames long, within half a frame (counter >= t / (t + 0.5), i.e. the
counter has reached ~1), or at ``max_frames``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError
from signgen.models.fsq_autoencoder import (
    FULL_POSE_DIM,
    axis_angle_to_matrix,
    matrix_to_axis_angle,
    matrix_to_rotation_6d,
    rotation_6d_to_matrix,
)
from signgen.models.translator import KVCache, TextToFramesMixin

#: SMPL-X skeleton joints the model predicts: body (1-21), jaw (22), left and right hand
#: (25-54); global orientation (0) and eyes (23, 24) are left out.
POSE_JOINTS: tuple[int, ...] = (*range(1, 23), *range(25, 55))
POSE_DIM = 6 * len(POSE_JOINTS)  # 312


def poses_to_6d(poses: torch.Tensor) -> torch.Tensor:
    """(...,165) SMPL-X axis-angle -> (...,POSE_DIM) 6-D rotations of ``POSE_JOINTS``."""
    if poses.shape[-1] != FULL_POSE_DIM:
        raise InvalidInputError(f"poses must be (...,{FULL_POSE_DIM}), got {tuple(poses.shape)}")
    joints = poses.reshape(*poses.shape[:-1], -1, 3)[..., list(POSE_JOINTS), :]
    return matrix_to_rotation_6d(axis_angle_to_matrix(joints)).flatten(-2)


def poses_from_6d(d6: torch.Tensor) -> torch.Tensor:
    """(...,POSE_DIM) 6-D rotations -> (...,165) axis-angle, global orientation and eyes 0."""
    if d6.shape[-1] != POSE_DIM:
        raise InvalidInputError(f"6-D poses must be (...,{POSE_DIM}), got {tuple(d6.shape)}")
    rotations = rotation_6d_to_matrix(d6.reshape(*d6.shape[:-1], len(POSE_JOINTS), 6))
    full = d6.new_zeros(*d6.shape[:-1], FULL_POSE_DIM // 3, 3)
    full[..., list(POSE_JOINTS), :] = matrix_to_axis_angle(rotations)
    return full.flatten(-2)


@dataclass
class RegressionTranslatorOutput(BaseOutput):
    """poses (B,T,POSE_DIM) 6-D rotations (not re-orthonormalised); counter (B,T) in (0,1);
    counter_logits (B,T). Position t predicts frame t+1."""

    poses: torch.Tensor = None
    counter: torch.Tensor = None
    counter_logits: torch.Tensor = None


class RegressionTranslator(TextToFramesMixin, ModelMixin, ConfigMixin):
    """Text ids (with a leading sign-language tag) -> SMPL-X articulated pose per frame.

    Args:
        vocab_size: text vocabulary (the tokenizer's, special tokens included).
        dim, num_heads, encoder_layers, decoder_layers, ffn_mult, dropout: transformer
            sizes (heads must divide dim).
        max_text_length, max_frames: longest text (ids) and pose sequence (frames).
        pad_id: the text padding id.
    """

    @register_to_config
    def __init__(self, vocab_size: int, dim: int = 256, num_heads: int = 4,
                 encoder_layers: int = 3, decoder_layers: int = 3, ffn_mult: int = 4,
                 dropout: float = 0.1, max_text_length: int = 128, max_frames: int = 256,
                 pad_id: int = 0) -> None:
        super().__init__()
        self._check_sizes(vocab_size, dim, num_heads, encoder_layers, decoder_layers, ffn_mult,
                          max_text_length, max_frames, dim=dim, num_heads=num_heads,
                          vocab_size=vocab_size, pad_id=pad_id)
        self._build_text_encoder(vocab_size, dim, num_heads, encoder_layers, ffn_mult, dropout,
                                 max_text_length, pad_id)
        self.pose_in = nn.Linear(POSE_DIM, dim)
        self._build_frame_decoder(dim, num_heads, decoder_layers, ffn_mult, dropout, max_frames)
        self.pose_head = nn.Linear(dim, POSE_DIM)
        self.counter_head = nn.Linear(dim, 1)
        # Train-set statistics of the 6-D poses (set_pose_statistics); saved with the weights.
        self.register_buffer("pose_mean", torch.zeros(POSE_DIM))
        self.register_buffer("pose_scale", torch.ones(POSE_DIM))

    def set_pose_statistics(self, mean: torch.Tensor, scale: torch.Tensor) -> None:
        """(POSE_DIM,) mean and (POSE_DIM,) positive scale of the 6-D training poses."""
        if mean.shape != (POSE_DIM,) or scale.shape != (POSE_DIM,) or not bool(
                (scale > 0).all()):
            raise InvalidInputError(f"pose statistics must be ({POSE_DIM},) with a positive "
                                    f"scale")
        self.pose_mean.copy_(mean)
        self.pose_scale.copy_(scale)

    def normalise(self, poses: torch.Tensor) -> torch.Tensor:
        """(...,POSE_DIM) 6-D poses -> standardised (train mean 0, scale 1 per value)."""
        return (poses - self.pose_mean) / self.pose_scale

    # -- parts (the text side is SignTranslator's) ----------------------------------------
    def _decode(self, x: torch.Tensor, text_kv: list, text_attn_mask: torch.Tensor | None,
                caches: list[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,N,D) decoder inputs -> 6-D poses (B,N,POSE_DIM) and counter logits (B,N)."""
        for i, layer in enumerate(self.decoder):
            x = layer(x, text_kv[i], text_attn_mask, None if caches is None else caches[i])
        x = self.decoder_norm(x)
        poses = self.pose_head(x) * self.pose_scale + self.pose_mean
        return poses, self.counter_head(x).squeeze(-1)

    @staticmethod
    def _text_attn_mask(text_mask: torch.Tensor) -> torch.Tensor | None:
        return None if bool(text_mask.all()) else text_mask[:, None, None]

    # -- training --------------------------------------------------------------------------
    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor, poses: torch.Tensor,
                input_noise: float = 0.0, generator: torch.Generator | None = None,
                ) -> RegressionTranslatorOutput:
        """Teacher forcing: text (B,L) and the target frames (B,T,POSE_DIM) -> predictions
        for frames 1..T. The inputs are frames 0..T-2 (standardised) plus Gaussian noise of
        std ``input_noise`` in standardised units (PT's augmentation; 0 at evaluation);
        ``generator`` (CPU) draws it."""
        if poses.ndim != 3 or poses.shape[-1] != POSE_DIM:
            raise InvalidInputError(f"poses must be (B,T,{POSE_DIM}), got {tuple(poses.shape)}")
        if not 1 <= poses.shape[1] <= self.config.max_frames:
            raise InvalidInputError(f"need 1 to max_frames ({self.config.max_frames}) frames, "
                                    f"got {poses.shape[1]}")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        inputs = self.normalise(poses[:, :-1])
        if input_noise > 0:
            noise = torch.randn(inputs.shape, generator=generator).to(inputs)
            inputs = inputs + input_noise * noise
        start = (self.start_frame + self.frame_position[0]).expand(len(memory), 1, -1)
        x = torch.cat([start, self.pose_in(inputs) + self.frame_position[1:poses.shape[1]]],
                      dim=1)
        out, counter = self._decode(x, text_kv, self._text_attn_mask(text_mask))
        return RegressionTranslatorOutput(poses=out, counter=counter.sigmoid(),
                                          counter_logits=counter)

    # -- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                 max_frames: int | None = None, min_frames: int = 1) -> list[torch.Tensor]:
        """Greedy decoding: a list of B tensors (T_i,165) float32 axis-angle (SMPL-X
        order, global orientation and eyes 0), on the CPU. A sequence ends after frame t
        (t >= ``min_frames``) when its counter >= t / (t + 0.5), or at ``max_frames``
        (default the model's). Each predicted frame is re-orthonormalised (6-D -> rotation
        -> 6-D) before it is fed back."""
        max_frames = self.config.max_frames if max_frames is None else max_frames
        if not 1 <= min_frames <= max_frames <= self.config.max_frames:
            raise InvalidInputError(f"need 1 <= min_frames <= max_frames <= "
                                    f"{self.config.max_frames}, got {min_frames}, {max_frames}")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        text_attn_mask = self._text_attn_mask(text_mask)
        batch = len(memory)
        head_dim = self.config.dim // self.config.num_heads
        caches = [KVCache(batch, self.config.num_heads, head_dim, max_frames, like=memory)
                  for _ in self.decoder]
        x = (self.start_frame + self.frame_position[0]).expand(batch, 1, -1)
        frames = []
        finished = torch.zeros(batch, dtype=torch.bool)
        lengths = torch.full((batch,), max_frames, dtype=torch.long)
        for t in range(1, max_frames + 1):  # this step predicts frame t (1-based)
            poses, counter = self._decode(x, text_kv, text_attn_mask, caches)
            d6 = matrix_to_rotation_6d(rotation_6d_to_matrix(
                poses[:, -1].float().view(batch, len(POSE_JOINTS), 6))).flatten(1)
            frames.append(d6)
            if t >= min_frames:
                ends = (counter[:, -1].float().sigmoid() >= t / (t + 0.5)).cpu() & ~finished
                lengths[ends] = t
                finished |= ends
            if finished.all() or t == max_frames:
                break
            x = (self.pose_in(self.normalise(d6).to(x.dtype)) + self.frame_position[t])[:, None]
        poses = poses_from_6d(torch.stack(frames, dim=1)).cpu()  # (B,T,165)
        return [poses[i, :int(lengths[i])] for i in range(batch)]


def regression_loss(output: RegressionTranslatorOutput, poses: torch.Tensor,
                    num_frames: torch.Tensor, counter_weight: float = 1.0,
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """MSE of the 6-D rotations over every real frame (mean over frames and values) +
    ``counter_weight`` x binary cross-entropy of the counter against (t+1)/T (soft
    targets; its minimum is at the true progress).

    poses (B,T,POSE_DIM) targets, padding beyond ``num_frames`` (B,) ignored."""
    b, t, _ = poses.shape
    positions = torch.arange(t, device=poses.device)
    real = positions[None] < num_frames[:, None]  # (B,T)
    mse = F.mse_loss(output.poses[real].float(), poses[real].float())
    progress = ((positions[None] + 1) / num_frames[:, None].clamp(min=1)).clamp(max=1.0)
    bce = F.binary_cross_entropy_with_logits(output.counter_logits[real].float(),
                                             progress[real].float())
    with torch.no_grad():
        counter_error = (output.counter[real] - progress[real]).abs().mean()
    return mse + counter_weight * bce, {"pose_mse": mse.item(), "counter_bce": bce.item(),
                                        "counter_error": counter_error.item()}
