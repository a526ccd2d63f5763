"""Reference encoder: the signer's reference image -> identity tokens for cross-attention.

    image (N,3,H,W) in [-1,1] --stride-2 conv stages (GroupNorm, SiLU)--> (N,C,h,w)
    --linear--> (N,L,D) + fixed 2D sin-cos positions --LayerNorm--> tokens (N,L,D)

h, w = H/f, W/f with f = 2 ** len(block_out_channels) (128 px, 4 stages -> 8x8, L = 64);
tokens are in row-major (y, x) order. The tokens are the UNet's ``encoder_hidden_states``
(``cross_attention_dim`` = ``token_dim``); they depend only on the reference, so a
pipeline computes them once per video and repeats them per frame
(:func:`signgen.models.denoiser.repeat_for_frames`).

SignViP uses a second SD-1.5 UNet with reference attention; signgen's lighter route is
cross-attention to these tokens (a known-working injection route, see FACTS).

"No identity" (classifier-free guidance): a dropped sample's L tokens are all the learned
``null_token`` -- with no position embedding and no LayerNorm, so every key is the same
and cross-attention returns one learned vector at every pixel, whatever the image size.
``null_token`` starts at zero (cross-attention then reads the value projection's bias).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import get_2d_sincos_pos_embed
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError


@dataclass
class ReferenceEncoderOutput(BaseOutput):
    """What :class:`ReferenceEncoder` returns.

    Attributes:
        tokens: (N,L,token_dim) float, L = (H/f)*(W/f), row-major; a dropped sample's
            tokens are all ``null_token``.
    """

    tokens: torch.Tensor = None


class ReferenceEncoder(ModelMixin, ConfigMixin):
    """Reference image -> L identity tokens.

    Args:
        in_channels: image channels (3).
        block_out_channels: width of each stride-2 stage; ``downsample_factor`` =
            2 ** len(block_out_channels). GroupNorm uses gcd(32, width) groups.
        token_dim: D, = the UNet's ``cross_attention_dim``; even (2D sin-cos positions).
    """

    @register_to_config
    def __init__(self, in_channels: int = 3, block_out_channels: Sequence[int] = (32, 64, 128, 128),
                 token_dim: int = 128):
        super().__init__()
        if not block_out_channels or min(block_out_channels) < 1:
            raise InvalidInputError("block_out_channels must be non-empty and positive, "
                                    f"got {list(block_out_channels)}")
        if token_dim < 2 or token_dim % 2:
            raise InvalidInputError(f"token_dim must be even and >= 2 (sin-cos), got {token_dim}")
        layers: list[nn.Module] = []
        previous = in_channels
        for width in block_out_channels:
            layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1),
                       nn.GroupNorm(math.gcd(32, width), width), nn.SiLU()]
            previous = width
        self.stages = nn.Sequential(*layers)
        self.to_tokens = nn.Linear(previous, token_dim)
        self.norm = nn.LayerNorm(token_dim)
        self.null_token = nn.Parameter(torch.zeros(token_dim))

    @property
    def downsample_factor(self) -> int:
        """f: an (H, W) image gives (H/f)*(W/f) tokens."""
        return 2 ** len(self.config.block_out_channels)

    def _grid(self, height: int, width: int) -> tuple[int, int]:
        f = self.downsample_factor
        if height % f or width % f or height < f or width < f:
            raise InvalidInputError(
                f"image height and width must be positive multiples of {f}, got {height}x{width}")
        return height // f, width // f

    def null_tokens(self, batch: int, height: int, width: int) -> torch.Tensor:
        """(batch, L, token_dim) "no identity" tokens for an image of height x width pixels
        (the unconditional branch of guidance, no image needed)."""
        h, w = self._grid(height, width)
        return self.null_token.expand(batch, h * w, -1)

    def forward(self, image: torch.Tensor, drop: torch.Tensor | None = None
                ) -> ReferenceEncoderOutput:
        """Encode reference images.

        Args:
            image: (N,in_channels,H,W) float in [-1,1], H and W multiples of
                ``downsample_factor``.
            drop: (N,) bool, True = replace that sample's tokens by the null tokens;
                None = keep all.
        """
        if image.ndim != 4 or image.shape[1] != self.config.in_channels:
            raise InvalidInputError(f"image must be (N,{self.config.in_channels},H,W), "
                                    f"got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise InvalidInputError(f"image must be float in [-1,1], got {image.dtype}")
        n = image.shape[0]
        h, w = self._grid(image.shape[2], image.shape[3])
        if drop is not None and (drop.dtype != torch.bool or tuple(drop.shape) != (n,)):
            raise InvalidInputError(
                f"drop must be bool ({n},), got {drop.dtype} {tuple(drop.shape)}")
        features = self.stages(image.to(self.device, self.dtype))  # (N,C,h,w)
        tokens = self.to_tokens(features.flatten(2).transpose(1, 2))  # (N,L,D) row-major
        positions = get_2d_sincos_pos_embed(self.config.token_dim, (h, w), device=tokens.device)
        tokens = self.norm(tokens + positions.to(tokens.dtype))
        if drop is not None:
            tokens = torch.where(drop.to(tokens.device)[:, None, None],
                                 self.null_token.to(tokens.dtype), tokens)
        return ReferenceEncoderOutput(tokens=tokens)
