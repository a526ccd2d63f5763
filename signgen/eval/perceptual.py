"""Learned perceptual metrics: LPIPS (AlexNet variant) and FVD (I3D features).

Both networks are defined here and their weights are read only from local files the user
names (``eval.lpips_weights`` / ``eval.i3d_weights``); nothing is ever downloaded.

* LPIPS (Zhang et al. 2018, 'alex', v0.1): torchvision-layout AlexNet features + the official
  ``alex.pth`` linear heads. Lower is more similar; 0 for identical images.
* FVD (Unterthiner et al. 2018): Fréchet distance between Gaussians fitted to the 1024-d I3D
  features of real and generated videos, with the InceptionI3d layout of the pytorch-i3d
  port (its ``rgb_imagenet.pt`` loads as is). FVD is a distribution statistic: it is biased
  and noisy below a few hundred videos per side, so compare numbers only at equal video
  counts. The suite reports it only when the user sets ``eval.i3d_weights``. Numbers from
  these weights compare with each other, not exactly with papers that used the TF-Hub I3D.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import linalg
from torch import nn

from signgen.errors import InvalidInputError

# LPIPS input normalisation: ImageNet statistics re-expressed for inputs in [-1, 1].
_LPIPS_SHIFT = (-0.030, -0.088, -0.188)
_LPIPS_SCALE = (0.458, 0.448, 0.450)
# Channels of the five AlexNet ReLU outputs LPIPS compares.
_ALEX_CHANNELS = (64, 192, 384, 256, 256)
# Smallest side AlexNet's conv/pool stack maps to at least one feature pixel.
_ALEX_MIN_SIDE = 31

# FVD inputs: I3D was trained on 224x224 clips. It downsamples time by 8, so very short clips
# leave a single time step for its (2, 7, 7) average pool; clips under 10 frames are refused.
FVD_SIZE = 224
FVD_MIN_FRAMES = 10
I3D_FEATURES = 1024


# --------------------------------------------------------------------------- weight files


def load_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a tensor dict from a local ``.safetensors`` or torch pickle (weights only) file."""
    path = Path(path)
    if not path.is_file():
        raise InvalidInputError(f"weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path), device="cpu")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # the loaders raise a zoo of types for foreign or corrupt files
        raise InvalidInputError(f"cannot read weights file {path}: {exc}") from None
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise InvalidInputError(f"{path} does not hold a state dict (name -> tensor)")
    return dict(state)


def _load_strict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    source: str | Path,
    ignore_prefixes: tuple[str, ...] = (),
) -> None:
    """Load `state` into `module` requiring exactly its keys and shapes.

    Keys starting with one of `ignore_prefixes` may be present and are dropped (e.g. the
    AlexNet classifier). BatchNorm ``num_batches_tracked`` counters, which files written by
    old torch versions lack, are filled from the module; they play no part in evaluation.
    """
    expected = module.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith(ignore_prefixes)}
    missing = [k for k in expected if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in expected]
    if missing or unexpected:
        raise InvalidInputError(
            f"{source} does not match the expected layout: missing keys {missing[:8]}"
            f"{' ...' if len(missing) > 8 else ''}, unexpected keys {unexpected[:8]}"
            f"{' ...' if len(unexpected) > 8 else ''}"
        )
    for key, value in state.items():
        if value.shape != expected[key].shape:
            raise InvalidInputError(
                f"{source}: {key} has shape {tuple(value.shape)}, "
                f"expected {tuple(expected[key].shape)}"
            )
    module.load_state_dict({**expected, **state}, strict=True)


# --------------------------------------------------------------------------- LPIPS


class AlexNetFeatures(nn.Module):
    """torchvision's ``alexnet().features`` up to the last ReLU, returning the 5 ReLU taps.

    Keys ``features.{0,3,6,8,10}.{weight,bias}`` as in torchvision state dicts (the final
    max-pool, index 12, has no weights and LPIPS does not use it).
    """

    _TAPS = (1, 4, 7, 9, 11)

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2),
            nn.ReLU(),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(384, 256, kernel_size=3, padding=1),
            nn.ReLU(),
            nn.Conv2d(256, 256, kernel_size=3, padding=1),
            nn.ReLU(),
        )

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(N, 3, H, W) normalised images -> 5 maps (N, C_i, H_i, W_i), C = 64,192,384,256,256."""
        taps = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self._TAPS:
                taps.append(x)
        return taps


class _LinearHead(nn.Module):
    """LPIPS 'lin' layer: a learned non-negative weight per channel (1x1 conv, no bias)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        # Index 0 is the official model's dropout, an identity at evaluation; it stays so the
        # weight key reads ``model.1.weight`` as in ``alex.pth``.
        self.model = nn.Sequential(nn.Identity(), nn.Conv2d(channels, 1, 1, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance with the AlexNet backbone: ``model(a, b)`` -> (N,) distances >= 0.

    Build with :meth:`from_files`; a bare ``LPIPS()`` has untrained weights. Inputs are RGB
    images (N, 3, H, W) in [-1, 1], H, W >= 31 (the official model sees 64x64 patches or
    whole images alike; no resizing is done here).
    """

    def __init__(self) -> None:
        super().__init__()
        self.net = AlexNetFeatures()
        for i, c in enumerate(_ALEX_CHANNELS):
            self.add_module(f"lin{i}", _LinearHead(c))
        self.register_buffer("shift", torch.tensor(_LPIPS_SHIFT).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("scale", torch.tensor(_LPIPS_SCALE).view(1, 3, 1, 1), persistent=False)
        self.eval()

    @classmethod
    def from_files(cls, alexnet_path: str | Path, lin_path: str | Path) -> LPIPS:
        """Load a torchvision AlexNet state dict and the official LPIPS ``alex.pth`` heads.

        alexnet_path: keys ``features.{0,3,6,8,10}.{weight,bias}`` (``classifier.*`` keys may
        be present and are ignored). lin_path: keys ``lin{0..4}.model.1.weight`` of shape
        (1, C, 1, 1). Any other missing or extra key, or a wrong shape, raises naming it.
        ``.safetensors`` files are read with safetensors, anything else with torch.load
        (weights only).
        """
        model = cls()
        _load_strict(
            model.net, load_state_dict(alexnet_path), alexnet_path, ignore_prefixes=("classifier.",)
        )
        heads = nn.ModuleDict({f"lin{i}": getattr(model, f"lin{i}") for i in range(5)})
        _load_strict(heads, load_state_dict(lin_path), lin_path)
        return model.eval()

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        """a, b (N, 3, H, W) in [-1, 1] -> (N,) LPIPS distances."""
        for name, x in (("a", a), ("b", b)):
            if x.ndim != 4 or x.shape[1] != 3:
                raise InvalidInputError(f"LPIPS input {name} must be (N, 3, H, W), got {x.shape}")
            if not torch.isfinite(x).all() or x.min() < -1 - 1e-4 or x.max() > 1 + 1e-4:
                raise InvalidInputError(f"LPIPS input {name} must lie in [-1, 1]")
        if a.shape != b.shape:
            raise InvalidInputError(f"LPIPS inputs differ in shape: {a.shape} vs {b.shape}")
        if min(a.shape[-2:]) < _ALEX_MIN_SIDE:
            raise InvalidInputError(f"LPIPS needs images of at least 31x31, got {a.shape[-2:]}")
        feats_a = self.net((a - self.shift) / self.scale)
        feats_b = self.net((b - self.shift) / self.scale)
        total = a.new_zeros(a.shape[0])
        for i, (fa, fb) in enumerate(zip(feats_a, feats_b, strict=True)):
            # Unit-normalise each pixel's feature vector (eps as in the official code).
            fa = fa / (fa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fb = fb / (fb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            total = total + getattr(self, f"lin{i}")((fa - fb) ** 2).mean(dim=(1, 2, 3))
        return total


# --------------------------------------------------------------------------- I3D


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding of one axis -> (before, after); the extra pixel goes after."""
    if size % stride == 0:
        total = max(kernel - stride, 0)
    else:
        total = max(kernel - size % stride, 0)
    return total // 2, total - total // 2


def _pad_same(x: torch.Tensor, kernel: Sequence[int], stride: Sequence[int]) -> torch.Tensor:
    """Zero-pad (N, C, T, H, W) so a (kernel, stride) window yields ceil(size / stride) outputs."""
    pads: list[int] = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride), strict=True):
        pads.extend(_same_padding(size, k, s))
    return F.pad(x, pads)


class MaxPool3dSame(nn.MaxPool3d):
    """3D max-pool with TF 'SAME' zero padding (as the port: pads with 0, after ReLUs)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(_pad_same(x, self.kernel_size, self.stride))


class Unit3D(nn.Module):
    """Conv3d ('SAME' padding) -> optional BatchNorm (eps 1e-3) -> optional ReLU.

    Keys: ``conv3d.weight`` (+ ``conv3d.bias`` when use_bias), ``bn.*`` when use_bn.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        use_bn: bool = True,
        use_bias: bool = False,
        relu: bool = True,
    ) -> None:
        super().__init__()
        self.kernel, self.stride, self.relu = kernel, stride, relu
        self.conv3d = nn.Conv3d(in_channels, out_channels, kernel, stride, padding=0, bias=use_bias)
        # momentum only matters for training; eps 1e-3 matches the TF original.
        self.bn = nn.BatchNorm3d(out_channels, eps=1e-3, momentum=0.01) if use_bn else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_pad_same(x, self.kernel, self.stride))
        if self.bn is not None:
            x = self.bn(x)
        return F.relu(x) if self.relu else x


class InceptionBlock(nn.Module):
    """Inception-v1 block inflated to 3D: 1x1 | 1x1->3x3 | 1x1->3x3 | pool->1x1, concatenated.

    out = (b0, b1a, b1b, b2a, b2b, b3b) channels; output has b0 + b1b + b2b + b3b channels.
    """

    def __init__(self, in_channels: int, out: tuple[int, int, int, int, int, int]) -> None:
        super().__init__()
        self.b0 = Unit3D(in_channels, out[0])
        self.b1a = Unit3D(in_channels, out[1])
        self.b1b = Unit3D(out[1], out[2], kernel=(3, 3, 3))
        self.b2a = Unit3D(in_channels, out[3])
        self.b2b = Unit3D(out[3], out[4], kernel=(3, 3, 3))
        self.b3a = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(1, 1, 1))
        self.b3b = Unit3D(in_channels, out[5])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(self.b3a(x))],
            dim=1,
        )


class InceptionI3d(nn.Module):
    """RGB-stream I3D (Carreira & Zisserman 2017) in the pytorch-i3d layout.

    Input (N, 3, T, H, W) RGB in [-1, 1]. :meth:`features` gives the (N, 1024) pooled
    features FVD uses; ``forward`` adds the logits head -> (N, num_classes) (averaged over
    time). State-dict keys match the port (``Conv3d_1a_7x7.conv3d.weight``,
    ``Mixed_3b.b0.bn.running_mean``, ``logits.conv3d.bias``, ...).
    """

    def __init__(self, num_classes: int = 400) -> None:
        super().__init__()
        self.Conv3d_1a_7x7 = Unit3D(3, 64, kernel=(7, 7, 7), stride=(2, 2, 2))
        self.MaxPool3d_2a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Conv3d_2b_1x1 = Unit3D(64, 64)
        self.Conv3d_2c_3x3 = Unit3D(64, 192, kernel=(3, 3, 3))
        self.MaxPool3d_3a_3x3 = MaxPool3dSame(kernel_size=(1, 3, 3), stride=(1, 2, 2))
        self.Mixed_3b = InceptionBlock(192, (64, 96, 128, 16, 32, 32))
        self.Mixed_3c = InceptionBlock(256, (128, 128, 192, 32, 96, 64))
        self.MaxPool3d_4a_3x3 = MaxPool3dSame(kernel_size=(3, 3, 3), stride=(2, 2, 2))
        self.Mixed_4b = InceptionBlock(480, (192, 96, 208, 16, 48, 64))
        self.Mixed_4c = InceptionBlock(512, (160, 112, 224, 24, 64, 64))
        self.Mixed_4d = InceptionBlock(512, (128, 128, 256, 24, 64, 64))
        self.Mixed_4e = InceptionBlock(512, (112, 144, 288, 32, 64, 64))
        self.Mixed_4f = InceptionBlock(528, (256, 160, 320, 32, 128, 128))
        self.MaxPool3d_5a_2x2 = MaxPool3dSame(kernel_size=(2, 2, 2), stride=(2, 2, 2))
        self.Mixed_5b = InceptionBlock(832, (256, 160, 320, 32, 128, 128))
        self.Mixed_5c = InceptionBlock(832, (384, 192, 384, 48, 128, 128))
        self.logits = Unit3D(I3D_FEATURES, num_classes, use_bn=False, use_bias=True, relu=False)
        self.eval()

    @classmethod
    def from_file(cls, path: str | Path) -> InceptionI3d:
        """Load pytorch-i3d weights (e.g. ``rgb_imagenet.pt``); the class count is read from
        ``logits.conv3d.bias``. Every key must match (a missing one raises naming it)."""
        state = load_state_dict(path)
        if "logits.conv3d.bias" not in state:
            raise InvalidInputError(
                f"{path} does not match the expected layout: missing keys ['logits.conv3d.bias']"
            )
        model = cls(num_classes=state["logits.conv3d.bias"].shape[0])
        _load_strict(model, state, path)
        return model.eval()

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 5 or x.shape[1] != 3:
            raise InvalidInputError(f"I3D input must be (N, 3, T, H, W), got {tuple(x.shape)}")
        for name in (
            "Conv3d_1a_7x7", "MaxPool3d_2a_3x3", "Conv3d_2b_1x1", "Conv3d_2c_3x3",
            "MaxPool3d_3a_3x3", "Mixed_3b", "Mixed_3c", "MaxPool3d_4a_3x3", "Mixed_4b",
            "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "MaxPool3d_5a_2x2", "Mixed_5b",
            "Mixed_5c",
        ):  # fmt: skip
            x = getattr(self, name)(x)
        # The port's AvgPool3d((2, 7, 7), stride 1), shrunk to fit maps from smaller inputs.
        kernel = tuple(min(k, s) for k, s in zip((2, 7, 7), x.shape[2:], strict=True))
        return F.avg_pool3d(x, kernel, stride=1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) in [-1, 1] -> (N, 1024): pooled Mixed_5c output before the logits
        (the port's (2, 7, 7) average pool, then the mean over the remaining positions)."""
        return self._trunk(x).mean(dim=(2, 3, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 3, T, H, W) in [-1, 1] -> (N, num_classes) logits averaged over time."""
        return self.logits(self._trunk(x)).mean(dim=(2, 3, 4))


# --------------------------------------------------------------------------- FVD


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), >= 0 up to rounding.

    ||mu1 - mu2||^2 + tr(sigma1 + sigma2 - 2 sqrt(sigma1 sigma2)), in squared feature units.
    As in the usual FID/FVD code: if the matrix square root is not finite (singular
    product), `eps` is added to both diagonals and it is retried; an imaginary part left by
    rounding is dropped, but one larger than 1e-3 on the diagonal raises.
    """
    mu1, mu2 = (
        np.atleast_1d(np.asarray(mu1, np.float64)),
        np.atleast_1d(np.asarray(mu2, np.float64)),
    )
    sigma1 = np.atleast_2d(np.asarray(sigma1, np.float64))
    sigma2 = np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise InvalidInputError(
            f"need means (D,) and covariances (D, D) of one D; got {mu1.shape}, {sigma1.shape}, "
            f"{mu2.shape}, {sigma2.shape}"
        )
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(d) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise InvalidInputError(
                "Fréchet distance: sqrt(sigma1 sigma2) has a large imaginary component "
                f"({np.abs(covmean.imag).max():.3g}); are the covariances valid?"
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def _video_batches(videos, batch_size: int, device: torch.device):
    """Yield (B, 3, T, 224, 224) float batches on `device` from (N, T, 3, H, W) or a list of
    (T, 3, H, W) clips."""
    if isinstance(videos, torch.Tensor):
        if videos.ndim != 5:
            raise InvalidInputError(f"videos must be (N, T, 3, H, W), got {tuple(videos.shape)}")
        clips: Sequence[torch.Tensor] = list(videos)
    else:
        clips = list(videos)
    for i, clip in enumerate(clips):
        if not isinstance(clip, torch.Tensor) or clip.ndim != 4 or clip.shape[1] != 3:
            raise InvalidInputError(f"video {i} must be a (T, 3, H, W) tensor")
        if clip.shape[0] < FVD_MIN_FRAMES:
            raise InvalidInputError(
                f"video {i} has {clip.shape[0]} frames; FVD needs at least {FVD_MIN_FRAMES}"
            )
        if not torch.isfinite(clip).all() or clip.min() < -1 - 1e-4 or clip.max() > 1 + 1e-4:
            raise InvalidInputError(f"video {i} must lie in [-1, 1]")
    # Clips of different length cannot share a batch; equal-length runs are batched.
    start = 0
    while start < len(clips):
        stop = start + 1
        while (
            stop < len(clips)
            and stop - start < batch_size
            and clips[stop].shape[0] == clips[start].shape[0]
        ):
            stop += 1
        frames = torch.cat([c.to(device, torch.float32) for c in clips[start:stop]])  # (B*T,3,H,W)
        frames = F.interpolate(
            frames, size=(FVD_SIZE, FVD_SIZE), mode="bilinear", align_corners=False
        )
        t = clips[start].shape[0]
        yield frames.view(stop - start, t, 3, FVD_SIZE, FVD_SIZE).transpose(1, 2)
        start = stop


@torch.no_grad()
def i3d_features(videos, i3d: InceptionI3d, batch_size: int = 8) -> np.ndarray:
    """(N, 1024) float64 I3D features of videos (N, T, 3, H, W) or a list of (T, 3, H, W),
    RGB in [-1, 1], T >= 10; frames are resized to 224x224 (bilinear), run on i3d's device."""
    device = next(i3d.parameters()).device
    batches = _video_batches(videos, batch_size, device)
    feats = [i3d.features(batch).cpu() for batch in batches]
    return torch.cat(feats).double().numpy()


def fvd(real_videos, fake_videos, i3d: InceptionI3d, batch_size: int = 8) -> float:
    """Fréchet video distance between two sets of videos (lower is better, 0 = same stats).

    Videos as in :func:`i3d_features`. Each set's features are summarised by their mean and
    unbiased covariance, compared with :func:`frechet_distance`. Only meaningful with many
    videos (hundreds) per side; with fewer than 1025 the covariances are singular and the
    score is biased upwards.
    """
    for side, videos in (("real", real_videos), ("generated", fake_videos)):
        if len(videos) < 2:
            raise InvalidInputError(f"FVD needs at least 2 {side} videos, got {len(videos)}")
    real = i3d_features(real_videos, i3d, batch_size)
    fake = i3d_features(fake_videos, i3d, batch_size)
    return frechet_distance(
        real.mean(0), np.cov(real, rowvar=False), fake.mean(0), np.cov(fake, rowvar=False)
    )
