"""Condition adapter: the condition embedding -> ControlNet-style residuals for every
skip connection of the denoiser (and its mid block).

The multi-condition encoder's residual enters the UNet once, at ``conv_in``. When that
encoder is frozen (so that the embedding stage II compresses stays fixed), the only
trainable path from the conditions into the denoiser is the UNet itself, and a
from-scratch UNet learns to copy the concatenated reference latent (the rest pose)
more easily than to draw the limbs from the conditions. This adapter gives the
conditions a trainable, multi-scale path (ControlNet, Zhang et al. 2023; condition-only
like T2I-Adapter, Mou et al. 2023, so it runs once per video, not once per step):

    embedding (N,E,h,w) --stem--> level 0 (N,c0,h,w) --stride 2--> level 1 (N,c1,h/2,w/2) ...
    level features --1x1 conv (zero init)--> one residual per entry of the UNet's
    ``down_block_res_samples`` + one for its mid block

The residuals go to the UNet's forward as ``down_block_additional_residuals`` and
``mid_block_additional_residual`` (``UNet2DConditionModel`` and ``UNetMotionModel``
both take them; a motion UNet folds frames into the batch, so residuals are
(B*F,C,h,w), clip-major). Zero-initialised outputs: at step 0 the UNet is unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError


def skip_layout(block_out_channels: Sequence[int], layers_per_block: int
                ) -> list[tuple[int, int]]:
    """(channels, level) of each of a diffusers UNet's ``down_block_res_samples`` in
    order: ``conv_in``'s output, then per down block its ``layers_per_block`` resnet
    outputs and (all but the last block) its downsampler's output. Level l is at
    1/2**l of the latent size. (SD-1.5: 12 entries.)"""
    widths = list(block_out_channels)
    if not widths or min(widths) < 1 or layers_per_block < 1:
        raise InvalidInputError(f"need positive block_out_channels and layers_per_block, got "
                                f"{widths} and {layers_per_block}")
    layout = [(widths[0], 0)]
    for level, width in enumerate(widths):
        layout += [(width, level)] * layers_per_block
        if level < len(widths) - 1:
            layout.append((width, level + 1))
    return layout


@dataclass
class ConditionAdapterOutput(BaseOutput):
    """down_residuals: one (N,C_i,h_i,w_i) per ``skip_layout`` entry; mid_residual:
    (N,C_last,h_last,w_last)."""

    down_residuals: tuple[torch.Tensor, ...] = None
    mid_residual: torch.Tensor = None


class ConditionAdapter(ModelMixin, ConfigMixin):
    """Condition embedding -> residuals for a UNet with ``block_out_channels`` and
    ``layers_per_block`` (those of the denoiser it feeds).

    Args:
        embedding_channels: E, channels of the condition encoder's embedding.
        block_out_channels, layers_per_block: the denoiser's (its config's values).
    """

    @register_to_config
    def __init__(self, embedding_channels: int = 32,
                 block_out_channels: Sequence[int] = (32, 64, 128), layers_per_block: int = 1):
        super().__init__()
        if embedding_channels < 1:
            raise InvalidInputError(f"embedding_channels must be >= 1, got {embedding_channels}")
        widths = list(block_out_channels)
        self.layout = skip_layout(widths, layers_per_block)
        self.levels = nn.ModuleList()
        previous = embedding_channels
        for level, width in enumerate(widths):
            stride = 1 if level == 0 else 2
            self.levels.append(nn.Sequential(
                nn.Conv2d(previous, width, 3, stride=stride, padding=1), nn.SiLU(),
                nn.Conv2d(width, width, 3, padding=1), nn.SiLU()))
            previous = width
        self.down_outputs = nn.ModuleList(
            nn.Conv2d(widths[level], channels, 1) for channels, level in self.layout)
        self.mid_output = nn.Conv2d(widths[-1], widths[-1], 1)
        for conv in [*self.down_outputs, self.mid_output]:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def forward(self, embedding: torch.Tensor) -> ConditionAdapterOutput:
        """embedding: (N,E,h,w), h and w divisible by 2**(levels-1) -> the residuals."""
        expected = self.config.embedding_channels
        factor = 2 ** (len(self.levels) - 1)
        if embedding.ndim != 4 or embedding.shape[1] != expected:
            raise InvalidInputError(f"embedding must be (N,{expected},h,w), got "
                                    f"{tuple(embedding.shape)}")
        if embedding.shape[2] % factor or embedding.shape[3] % factor:
            raise InvalidInputError(f"embedding height and width must be divisible by {factor}, "
                                    f"got {tuple(embedding.shape[2:])}")
        features, x = [], embedding.to(self.dtype)
        for level in self.levels:
            x = level(x)
            features.append(x)
        down = tuple(conv(features[level]) for conv, (_, level)
                     in zip(self.down_outputs, self.layout, strict=True))
        return ConditionAdapterOutput(down_residuals=down, mid_residual=self.mid_output(x))


def unet_residual_kwargs(adapter_output: ConditionAdapterOutput | None) -> dict:
    """The UNet forward's keyword arguments for ``adapter_output`` ({} for None)."""
    if adapter_output is None:
        return {}
    return {"down_block_additional_residuals": adapter_output.down_residuals,
            "mid_block_additional_residual": adapter_output.mid_residual}


def check_adapter_fits(adapter: ConditionAdapter, unet, embedding_channels: int) -> None:
    """InvalidInputError unless ``adapter`` was made for ``unet``'s widths and layers
    and for embeddings of ``embedding_channels``."""
    ours = (list(adapter.config.block_out_channels), adapter.config.layers_per_block,
            adapter.config.embedding_channels)
    theirs = (list(unet.config.block_out_channels), unet.config.layers_per_block,
              embedding_channels)
    if ours != theirs:
        raise InvalidInputError(
            f"the condition adapter (widths, layers per block, embedding channels) {ours} does "
            f"not fit the UNet and condition encoder {theirs}")
