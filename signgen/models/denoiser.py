"""The denoiser: diffusers' UNet2DConditionModel, lifted to a UNetMotionModel for video.

No new architecture here, only construction, loading and the two injection routes:

* condition embedding: :func:`add_to_conv_in` adds the condition encoder's residual to the
  output of ``unet.conv_in`` (a forward hook, removed on exit);
* reference identity: the reference tokens are the UNet's ``encoder_hidden_states``.

Layouts in diffusers 0.42.1 (read from ``unet_motion_model.py`` and checked in
``tests/test_video_models.py``):

* ``UNetMotionModel`` takes ``sample`` as (B,C,F,h,w) -- channels before frames, although
  its docstring says (batch, num_frames, channel, ...) -- and returns (B,C,F,h,w).
* Inside, frames are folded into the batch as ``sample.permute(0,2,1,3,4).reshape(B*F,...)``:
  clip-major, row ``b*F + f`` is frame f of clip b. ``conv_in`` sees (B*F,C,h,w) in that
  order; :func:`frames_to_batch` / :func:`batch_to_frames` convert.
* The timestep embedding is per clip and repeated per frame internally, but
  ``encoder_hidden_states`` is NOT: it goes to the spatial cross-attention of the (B*F)
  frame batch as given, so it must be (B*F,L,D) in the same clip-major order
  (:func:`repeat_for_frames`). A (B,L,D) tensor with B > 1 fails with a shape error; with
  B == 1 and F > 1 it fails too (checked), so there is no silent misuse.
* ``MotionAdapter`` in diffusers does not zero-initialise its temporal transformers
  (AnimateDiff's original does, ``zero_initialize=True``); :func:`new_motion_adapter` zeroes
  every ``proj_out`` so a freshly lifted UNet equals the 2D UNet frame by frame.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path

import torch
from diffusers import MotionAdapter, UNet2DConditionModel, UNetMotionModel
from torch import nn

from signgen.errors import InvalidInputError


def build_unet(in_channels: int = 4, out_channels: int = 4, sample_size: int = 32,
               block_out_channels: Sequence[int] = (32, 64, 128), layers_per_block: int = 1,
               attention_heads: int = 2, cross_attention_dim: int = 128) -> UNet2DConditionModel:
    """A fresh UNet2DConditionModel on (N,in_channels,sample_size,sample_size) latents.

    The first (full-resolution) block has no attention (CPU cost); every other block and
    the mid block cross-attend to (N,L,cross_attention_dim) tokens with
    ``attention_heads`` heads of width/heads channels. GroupNorm groups =
    gcd(32, *block_out_channels) (32 for SD-like widths).
    """
    widths = list(block_out_channels)
    if not widths or min(widths) < 1:
        raise InvalidInputError(f"block_out_channels must be non-empty and positive, got {widths}")
    if attention_heads < 1 or any(width % attention_heads for width in widths):
        raise InvalidInputError(
            f"attention_heads={attention_heads} must divide every width in {widths}")
    n = len(widths)
    return UNet2DConditionModel(
        sample_size=sample_size, in_channels=in_channels, out_channels=out_channels,
        down_block_types=("DownBlock2D",) + ("CrossAttnDownBlock2D",) * (n - 1),
        mid_block_type="UNetMidBlock2DCrossAttn",
        up_block_types=("CrossAttnUpBlock2D",) * (n - 1) + ("UpBlock2D",),
        block_out_channels=tuple(widths), layers_per_block=layers_per_block,
        norm_num_groups=math.gcd(32, *widths), cross_attention_dim=cross_attention_dim,
        # diffusers' naming quirk (issue 2011): in UNet2DConditionModel this is the number
        # of heads, not the head width.
        attention_head_dim=attention_heads,
    )


def _pretrained_folder(path: str | Path, model_class: type) -> Path:
    folder = Path(path)
    if not (folder / "config.json").is_file():
        raise InvalidInputError(
            f"no {model_class.__name__} folder at {folder} (config.json missing)")
    found = model_class.load_config(folder).get("_class_name")
    if found != model_class.__name__:
        raise InvalidInputError(f"{folder} holds a {found}, not a {model_class.__name__}")
    return folder


def load_unet(path: str | Path) -> UNet2DConditionModel:
    """A UNet2DConditionModel from a local ``save_pretrained`` folder."""
    return UNet2DConditionModel.from_pretrained(_pretrained_folder(path, UNet2DConditionModel))


def load_motion_unet(path: str | Path) -> UNetMotionModel:
    """A UNetMotionModel from a local ``save_pretrained`` folder."""
    return UNetMotionModel.from_pretrained(_pretrained_folder(path, UNetMotionModel))


def load_motion_adapter(path: str | Path) -> MotionAdapter:
    """A MotionAdapter (temporal modules only) from a local ``save_pretrained`` folder."""
    return MotionAdapter.from_pretrained(_pretrained_folder(path, MotionAdapter))


def new_motion_adapter(unet: UNet2DConditionModel, *, motion_num_attention_heads: int = 2,
                       motion_max_seq_length: int = 32) -> MotionAdapter:
    """A fresh MotionAdapter matching ``unet`` (widths, layers per block, norm groups),
    with zero-initialised temporal outputs (identity at step 0). Clips may have up to
    ``motion_max_seq_length`` frames."""
    widths = list(unet.config.block_out_channels)
    heads = motion_num_attention_heads
    if heads < 1 or any(width % heads for width in widths):
        raise InvalidInputError(
            f"motion_num_attention_heads={heads} must divide every width in {widths}")
    adapter = MotionAdapter(
        block_out_channels=tuple(widths), motion_layers_per_block=unet.config.layers_per_block,
        motion_norm_num_groups=unet.config.norm_num_groups,
        motion_num_attention_heads=motion_num_attention_heads,
        motion_max_seq_length=motion_max_seq_length, use_motion_mid_block=True)
    for name, module in adapter.named_modules():
        if name.endswith("proj_out") and isinstance(module, nn.Linear):
            nn.init.zeros_(module.weight)
            nn.init.zeros_(module.bias)
    return adapter


def to_motion_unet(unet: UNet2DConditionModel, motion_adapter: MotionAdapter | None = None, *,
                   motion_num_attention_heads: int = 2,
                   motion_max_seq_length: int = 32) -> UNetMotionModel:
    """Lift a 2D UNet to video: its weights (copied) + the temporal modules of
    ``motion_adapter``, or of a fresh :func:`new_motion_adapter` when None (the keyword
    arguments apply only then). ``unet`` itself is left unchanged."""
    if motion_adapter is None:
        motion_adapter = new_motion_adapter(
            unet, motion_num_attention_heads=motion_num_attention_heads,
            motion_max_seq_length=motion_max_seq_length)
    adapter_widths = list(motion_adapter.config.block_out_channels)
    if adapter_widths != list(unet.config.block_out_channels):
        raise InvalidInputError(f"motion adapter widths {adapter_widths} do not match the UNet's "
                                f"{list(unet.config.block_out_channels)}")
    return UNetMotionModel.from_unet2d(unet, motion_adapter)


def freeze_except_motion(unet_motion: UNetMotionModel) -> list[nn.Parameter]:
    """Set ``requires_grad=False`` on all but the temporal (motion) modules; returns the
    trainable parameters (AnimateDiff stage: spatial weights stay as trained)."""
    if not isinstance(unet_motion, UNetMotionModel):
        raise InvalidInputError(f"expected a UNetMotionModel, got {type(unet_motion).__name__}")
    unet_motion.freeze_unet2d_params()
    trainable = [(name, p) for name, p in unet_motion.named_parameters() if p.requires_grad]
    stray = [name for name, _ in trainable if ".motion_modules." not in name]
    assert not stray, f"non-motion parameters left trainable: {stray[:3]}"
    return [p for _, p in trainable]


def frames_to_batch(x: torch.Tensor) -> torch.Tensor:
    """(B,C,F,h,w) -> (B*F,C,h,w), row b*F + f: the order UNetMotionModel folds frames in."""
    if x.ndim != 5:
        raise InvalidInputError(f"expected (B,C,F,h,w), got {tuple(x.shape)}")
    b, c, f, h, w = x.shape
    return x.permute(0, 2, 1, 3, 4).reshape(b * f, c, h, w)


def batch_to_frames(x: torch.Tensor, num_frames: int) -> torch.Tensor:
    """(B*F,C,h,w) clip-major -> (B,C,F,h,w); the inverse of :func:`frames_to_batch`."""
    if x.ndim != 4 or num_frames < 1 or x.shape[0] % num_frames:
        raise InvalidInputError(
            f"expected (B*F,C,h,w) with F={num_frames} dividing the batch, got {tuple(x.shape)}")
    bf, c, h, w = x.shape
    return x.reshape(bf // num_frames, num_frames, c, h, w).permute(0, 2, 1, 3, 4)


def repeat_for_frames(tokens: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Per-clip (B,L,D) tokens -> (B*F,L,D) clip-major, as UNetMotionModel's
    ``encoder_hidden_states`` must be."""
    if tokens.ndim != 3 or num_frames < 1:
        raise InvalidInputError(f"expected (B,L,D) tokens and num_frames >= 1, "
                                f"got {tuple(tokens.shape)} and {num_frames}")
    return tokens.repeat_interleave(num_frames, dim=0)


@contextlib.contextmanager
def add_to_conv_in(unet: UNet2DConditionModel | UNetMotionModel,
                   residual: torch.Tensor) -> Iterator[None]:
    """Within the block, every ``unet`` forward adds ``residual`` to ``unet.conv_in``'s output.

    ``residual``: (N,block_out_channels[0],h,w) for a UNet2DConditionModel on (N,C,h,w);
    (B*F,block_out_channels[0],h,w) in clip-major order (:func:`frames_to_batch`) for a
    UNetMotionModel on (B,C,F,h,w). A batch doubled for classifier-free guidance needs a
    residual doubled the same way. Shape mismatches raise InvalidInputError at the forward.
    """
    channels = unet.conv_in.out_channels
    if residual.ndim != 4 or residual.shape[1] != channels:
        raise InvalidInputError(
            f"residual must be (N,{channels},h,w) for this UNet, got {tuple(residual.shape)}")

    def hook(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        if output.shape != residual.shape:
            raise InvalidInputError(f"residual {tuple(residual.shape)} does not match conv_in "
                                    f"output {tuple(output.shape)}")
        return output + residual

    handle = unet.conv_in.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()
