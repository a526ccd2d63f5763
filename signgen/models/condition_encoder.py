"""Multi-condition encoder: per-frame pose map + 3D-hand render -> condition embedding.

SignViP (Sec. 3.1) encodes each condition image with its own small CNN, fuses the
branches with a learned gate and adds the result to the denoiser's first feature map
through a zero-initialised projection, so the (pre)trained UNet is unchanged at step 0.

    conditions[k] (N,C,H,W) in [0,1] --branch_k--> feature_k (N,E,h,w), h,w = H/f,W/f
    concat_k(feature_k) --gate conv--> logits (N,K,h,w) --softmax over active k--> gates
    sum_k gates_k * feature_k --conv, SiLU--> embedding (N,E,h,w)  (what stage II compresses)
    embedding --project (zero init)--> residual (N,out_channels,h,w)  (+= UNet conv_in output)

f = 2 ** (len(block_out_channels) - 1) = ``downsample_factor``, chosen equal to the VAE's.
The gate is a softmax (not SignViP's independent sigmoids) so that the weights of the
present conditions sum to 1 whichever subset is present: dropping a condition
(classifier-free guidance, missing hand renders) renormalises the others instead of
shrinking the embedding.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import torch
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError

DEFAULT_CONDITIONS = ("pose_map", "hand_render")


@dataclass
class ConditionEncoderOutput(BaseOutput):
    """What :class:`MultiConditionEncoder` returns.

    Attributes:
        embedding: (N,E,h,w) float, the fused condition embedding (exactly zero for a
            sample with every condition masked).
        gates: (N,K,h,w) float in [0,1]; sums to 1 over a sample's present conditions at
            every pixel, 0 for masked ones (all 0 when every condition is masked).
        residual: (N,out_channels,h,w) float, ``project(embedding)``: add it to the UNet's
            ``conv_in`` output (see :func:`signgen.models.denoiser.add_to_conv_in`).
    """

    embedding: torch.Tensor = None
    gates: torch.Tensor = None
    residual: torch.Tensor = None


def random_condition_mask(batch: int, num_conditions: int, drop_probability: float,
                          generator: torch.Generator | None = None,
                          device: torch.device | str | None = None) -> torch.Tensor:
    """(batch, num_conditions) bool, True = condition kept; each entry is dropped
    independently with ``drop_probability`` in [0, 1] (so a sample may lose all of them,
    which trains the unconditional embedding for classifier-free guidance)."""
    if not 0.0 <= drop_probability <= 1.0:
        raise InvalidInputError(f"drop_probability must be in [0, 1], got {drop_probability}")
    if batch < 0 or num_conditions < 1:
        raise InvalidInputError(
            f"need batch >= 0 and num_conditions >= 1, got {batch} and {num_conditions}")
    device = generator.device if generator is not None and device is None else device
    draws = torch.rand(batch, num_conditions, generator=generator, device=device)
    return draws >= drop_probability


def _branch(in_channels: int, widths: Sequence[int], embedding_channels: int) -> nn.Sequential:
    """Stem conv, then one stride-2 stage per further width, then a 1x1 projection:
    (N,in_channels,H,W) -> (N,embedding_channels,H/f,W/f)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, widths[0], 3, padding=1), nn.SiLU()]
    for previous, width in zip(widths[:-1], widths[1:], strict=True):
        layers += [nn.Conv2d(previous, width, 3, stride=2, padding=1), nn.SiLU(),
                   nn.Conv2d(width, width, 3, padding=1), nn.SiLU()]
    layers.append(nn.Conv2d(widths[-1], embedding_channels, 1))
    return nn.Sequential(*layers)


class MultiConditionEncoder(ModelMixin, ConfigMixin):
    """Encodes K named condition images per frame into one gated embedding map.

    Args:
        conditions: the condition names, in the order of ``condition_mask``'s columns and
            of ``gates``' channels (valid Python identifiers, unique).
        in_channels: channels of every condition image (3 for RGB renders).
        block_out_channels: widths of each branch's stages; the first is the stem at full
            resolution, each further one halves H and W.
        embedding_channels: E, channels of the fused embedding (what stage II compresses).
        out_channels: channels of the residual, = the UNet's ``block_out_channels[0]``.
    """

    @register_to_config
    def __init__(self, conditions: Sequence[str] = DEFAULT_CONDITIONS, in_channels: int = 3,
                 block_out_channels: Sequence[int] = (16, 32, 64),
                 embedding_channels: int = 32, out_channels: int = 32):
        super().__init__()
        names = list(conditions)
        if not names:
            raise InvalidInputError("MultiConditionEncoder needs at least one condition name")
        if len(set(names)) != len(names):
            raise InvalidInputError(f"condition names must be unique, got {names}")
        bad = [name for name in names if not (isinstance(name, str) and name.isidentifier())]
        if bad:
            raise InvalidInputError(f"condition names must be Python identifiers, got {bad}")
        if not block_out_channels or min(block_out_channels) < 1:
            raise InvalidInputError("block_out_channels must be non-empty and positive, "
                                    f"got {list(block_out_channels)}")
        if min(in_channels, embedding_channels, out_channels) < 1:
            raise InvalidInputError("in_channels, embedding_channels and out_channels must be >= 1")
        self.condition_names = names
        widths = list(block_out_channels)
        self.branches = nn.ModuleDict(
            {name: _branch(in_channels, widths, embedding_channels) for name in names})
        self.gate = nn.Conv2d(len(names) * embedding_channels, len(names), 3, padding=1)
        self.fuse = nn.Sequential(nn.Conv2d(embedding_channels, embedding_channels, 3, padding=1),
                                  nn.SiLU())
        # Zero init (ControlNet, SignViP): the residual is 0 at step 0, so the UNet starts
        # exactly as it was. Gradients still reach it: d residual / d weight = embedding.
        self.projection = nn.Conv2d(embedding_channels, out_channels, 3, padding=1)
        nn.init.zeros_(self.projection.weight)
        nn.init.zeros_(self.projection.bias)

    @property
    def downsample_factor(self) -> int:
        """f: the embedding is (H/f, W/f) for (H, W) condition images."""
        return 2 ** (len(self.config.block_out_channels) - 1)

    def _check(self, conditions: Mapping[str, torch.Tensor],
               condition_mask: torch.Tensor | None) -> tuple[torch.Tensor, tuple[int, ...]]:
        """Validate the inputs; returns the (N,K) bool mask and the common (N,C,H,W)."""
        if not isinstance(conditions, Mapping):
            raise InvalidInputError(
                f"conditions must be a dict name -> tensor, got {type(conditions).__name__}")
        unknown = sorted(set(conditions) - set(self.condition_names))
        if unknown:
            raise InvalidInputError(
                f"unknown condition(s) {unknown}; this encoder knows {self.condition_names}")
        if not conditions:
            raise InvalidInputError("no condition tensor given; pass at least one (for N, H, W)")
        shapes = {name: tuple(x.shape) for name, x in conditions.items()}
        shape = next(iter(shapes.values()))
        if len(set(shapes.values())) > 1:
            raise InvalidInputError(f"condition tensors must share one shape, got {shapes}")
        if len(shape) != 4 or shape[1] != self.config.in_channels:
            raise InvalidInputError(
                f"condition tensors must be (N,{self.config.in_channels},H,W), got {shape}")
        for name, x in conditions.items():
            if not x.is_floating_point():
                raise InvalidInputError(f"condition {name!r} must be float in [0,1], got {x.dtype}")
        f = self.downsample_factor
        if shape[2] % f or shape[3] % f:
            raise InvalidInputError(
                f"condition height and width must be divisible by {f}, got {shape[2]}x{shape[3]}")
        n, k = shape[0], len(self.condition_names)
        if condition_mask is None:
            condition_mask = torch.ones(n, k, dtype=torch.bool, device=self.device)
        elif condition_mask.dtype != torch.bool or tuple(condition_mask.shape) != (n, k):
            raise InvalidInputError(f"condition_mask must be bool ({n},{k}), "
                                    f"got {condition_mask.dtype} {tuple(condition_mask.shape)}")
        for i, name in enumerate(self.condition_names):
            if name not in conditions and bool(condition_mask[:, i].any()):
                raise InvalidInputError(
                    f"condition {name!r} is missing but not masked off for every sample")
        return condition_mask.to(self.device), shape

    def _embed(self, conditions: Mapping[str, torch.Tensor],
               condition_mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        mask, (n, _, height, width) = self._check(conditions, condition_mask)
        f = self.downsample_factor
        features = []  # K x (N,E,h,w); a masked condition contributes exact zeros
        for i, name in enumerate(self.condition_names):
            if name in conditions:
                feature = self.branches[name](conditions[name].to(self.device, self.dtype))
                # Zeroed before the gate conv too: a masked input must not move the gates.
                feature = feature * mask[:, i, None, None, None].to(feature.dtype)
            else:
                feature = torch.zeros(n, self.config.embedding_channels, height // f, width // f,
                                      device=self.device, dtype=self.dtype)
            features.append(feature)
        stacked = torch.stack(features, dim=1)  # (N,K,E,h,w)
        logits = self.gate(stacked.flatten(1, 2))  # (N,K,h,w)
        keep = mask[:, :, None, None]
        any_kept = mask.any(dim=1)[:, None, None, None]  # (N,1,1,1)
        # -inf for masked conditions; a sample with none left gets finite logits (its gates
        # are then zeroed) so softmax never sees an all -inf row (NaN).
        logits = logits.masked_fill(~keep, float("-inf")).masked_fill(~any_kept, 0.0)
        gates = torch.softmax(logits, dim=1) * keep.to(logits.dtype)
        fused = (gates.unsqueeze(2) * stacked).sum(dim=1)  # (N,E,h,w)
        # The conv's bias would make an all-masked sample nonzero: zero it explicitly, so the
        # unconditional embedding is exactly 0.
        embedding = self.fuse(fused) * any_kept.to(fused.dtype)
        return embedding, gates

    def embed(self, conditions: Mapping[str, torch.Tensor],
              condition_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(N,E,h,w) condition embedding; arguments as in :meth:`forward`."""
        return self._embed(conditions, condition_mask)[0]

    def project(self, embedding: torch.Tensor) -> torch.Tensor:
        """(N,E,h,w) embedding (encoded or decoded by stage II) -> (N,out_channels,h,w)
        residual for the UNet's ``conv_in`` output."""
        if embedding.ndim != 4 or embedding.shape[1] != self.config.embedding_channels:
            raise InvalidInputError(f"embedding must be (N,{self.config.embedding_channels},h,w), "
                                    f"got {tuple(embedding.shape)}")
        return self.projection(embedding)

    def forward(self, conditions: Mapping[str, torch.Tensor],
                condition_mask: torch.Tensor | None = None) -> ConditionEncoderOutput:
        """Encode one batch of frames.

        Args:
            conditions: name -> (N,in_channels,H,W) float in [0,1], H and W divisible by
                ``downsample_factor``, one shape for all. A condition masked off for every
                sample may be omitted (it is treated as absent).
            condition_mask: (N,K) bool, True = condition present, columns in
                ``config.conditions`` order; None = all present.
        """
        embedding, gates = self._embed(conditions, condition_mask)
        return ConditionEncoderOutput(embedding=embedding, gates=gates,
                                      residual=self.projection(embedding))
