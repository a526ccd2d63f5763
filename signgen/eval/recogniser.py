"""Back-translation recognisers: sign video (or keypoints) -> gloss sequence, trained with CTC.

The evaluation suite scores a generated video by how well a recogniser trained on real
(here: SynthSign ground-truth) videos reads the intended glosses back (WER, BLEU). Two
variants share one temporal encoder and CTC head:

    VideoGlossRecogniser  frames (B,T,3,S,S) in [-1,1] ──CNN per frame pair──► (B,T',D)
    PoseGlossRecogniser   keypoints (B,T,133,2) in shoulder widths + visible ──MLP──► (B,T',D)
        (B,T',D) + language embedding ──temporal convs, transformer (key-padding mask)──►
        (B,T',V) CTC log-probabilities, index 0 = blank ──greedy decoding──► gloss lists

T' = ceil(T / temporal_stride): at SynthSign's 12 fps a stride of 2 gives 6 steps a
second, still 3-4 per sign, and halves the cost of every layer.

The language tag is an input: SynthSign's two languages share only 30 % of their signs
and the same form can mean different glosses in each, and the tag is always known at
evaluation (the system was asked for that language).

Models take plain keyword arguments (the vocabulary is a list of glosses, stored in the
model config, so ``from_pretrained`` restores it); this module reads no files.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import ConfigError, InvalidInputError, SignGenError
from signgen.eval.metrics import normalise_keypoints

BLANK = "<blank>"
NUM_KEYPOINTS = 133  # COCO-WholeBody
SHOULDERS = (5, 6)  # COCO-WholeBody left, right shoulder


class UnknownGlossError(SignGenError, KeyError):
    """A gloss is not in the recogniser's vocabulary."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class GlossVocabulary:
    """CTC output classes: index 0 is the blank, then the glosses in the given order."""

    blank = 0

    def __init__(self, glosses: Sequence[str]) -> None:
        glosses = list(glosses)
        if not glosses:
            raise ConfigError("a gloss vocabulary needs at least one gloss")
        if BLANK in glosses:
            raise ConfigError(f"{BLANK!r} is reserved for the CTC blank")
        if len(set(glosses)) != len(glosses):
            repeated = sorted({g for g in glosses if glosses.count(g) > 1})[:5]
            raise ConfigError(f"the gloss vocabulary repeats {repeated}")
        self.glosses: tuple[str, ...] = tuple(glosses)
        self.tokens: tuple[str, ...] = (BLANK, *glosses)
        self._index = {g: i for i, g in enumerate(self.tokens)}

    @classmethod
    def from_lexicon(cls, lexicon) -> GlossVocabulary:
        """Sorted lexical glosses of every language, then every fingerspelled name
        (``fs-ANNA``), sorted; ``lexicon`` is a ``signgen.data.synthsign.lexicon.Lexicon``."""
        from signgen.data.synthsign.vocabulary import name_gloss

        lexical = sorted({g for lang in lexicon.languages for g in lexicon.glosses(lang)})
        return cls(lexical + sorted(name_gloss(n) for n in lexicon.names))

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GlossVocabulary) and other.tokens == self.tokens

    def encode(self, glosses: Sequence[str]) -> list[int]:
        """Gloss strings -> class indices in [1, len(self)); an unknown gloss is an error."""
        ids = []
        for gloss in glosses:
            if gloss not in self._index or gloss == BLANK:
                close = difflib.get_close_matches(str(gloss), self.glosses, n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise UnknownGlossError(f"gloss {gloss!r} is not in the recogniser's "
                                        f"vocabulary ({len(self.glosses)} glosses){hint}")
            ids.append(self._index[gloss])
        return ids

    def decode(self, ids: Sequence[int]) -> list[str]:
        """Class indices -> glosses; blanks are dropped (no collapsing of repeats)."""
        out = []
        for i in ids:
            i = int(i)
            if not 0 <= i < len(self.tokens):
                raise InvalidInputError(f"class index {i} is outside [0, {len(self.tokens)})")
            if i != self.blank:
                out.append(self.tokens[i])
        return out


def ctc_greedy_decode(log_probs: torch.Tensor, valid: torch.Tensor | None = None,
                      blank: int = 0) -> list[list[int]]:
    """Best path decoding: argmax per frame, collapse repeats, drop blanks.

    Args:
        log_probs: (B,T,V) scores (log-probabilities or logits).
        valid: (B,T) bool, False for padding frames (ignored); None = all valid.
    Returns: B lists of class indices (no blanks).
    """
    if log_probs.ndim != 3:
        raise InvalidInputError(f"log_probs must be (B,T,V), got {tuple(log_probs.shape)}")
    best = log_probs.argmax(-1).cpu()
    lengths = (best.new_full((best.shape[0],), best.shape[1]) if valid is None
               else valid.sum(1).cpu())
    out = []
    for path, length in zip(best.tolist(), lengths.tolist(), strict=True):
        ids, previous = [], blank
        for i in path[:length]:
            if i != previous and i != blank:
                ids.append(i)
            previous = i
        out.append(ids)
    return out


def resize_video(video: np.ndarray, size: int) -> torch.Tensor:
    """(T,H,W,3) uint8 square frames -> (T,3,size,size) uint8, area interpolation (exact
    box averaging for integer factors such as 128 -> 64)."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise InvalidInputError(f"a video must be (T,H,W,3) uint8, got {video.shape} "
                                f"{video.dtype}")
    if video.shape[1] != video.shape[2]:
        raise InvalidInputError(f"recogniser frames must be square, got "
                                f"{video.shape[1]}x{video.shape[2]}")
    if video.shape[0] == 0:
        raise InvalidInputError("a video must have at least one frame")
    x = torch.from_numpy(video).permute(0, 3, 1, 2)
    if video.shape[1] == size:
        return x.contiguous()
    y = F.interpolate(x.float(), size=(size, size), mode="area")
    return y.round_().clamp_(0, 255).to(torch.uint8)


def _as_track(keypoints: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Checked (T,133,2) float64 points and (T,133) bool visibility (non-finite points
    count as not visible)."""
    points = np.asarray(keypoints, dtype=np.float64)
    if points.ndim != 3 or points.shape[1:] != (NUM_KEYPOINTS, 2) or not len(points):
        raise InvalidInputError(f"keypoints must be (T,{NUM_KEYPOINTS},2) with T >= 1, got "
                                f"{points.shape}")
    vis = np.asarray(visible)
    if vis.shape != points.shape[:2]:
        raise InvalidInputError(f"visible must be {points.shape[:2]}, got {vis.shape}")
    return points, vis.astype(bool) & np.isfinite(points).all(-1)


def shows_shoulders(keypoints: np.ndarray, visible: np.ndarray) -> bool:
    """Whether any frame of a (T,133,2) track shows both shoulders (finite and visible),
    which ``pose_input`` needs."""
    _, vis = _as_track(keypoints, visible)
    return bool((vis[:, SHOULDERS[0]] & vis[:, SHOULDERS[1]]).any())


def pose_input(keypoints: np.ndarray, visible: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
    """A keypoint track as the pose recogniser reads it.

    Args:
        keypoints: (T,133,2) pixels (COCO-WholeBody); visible: (T,133) bool.
    Returns: keypoints (T,133,2) float32 in shoulder widths, centred on the shoulders'
    midpoint (``signgen.eval.metrics.normalise_keypoints``: per frame, the clip's median
    where a frame lacks a shoulder), 0 where not visible; visible (T,133) bool (non-finite
    points count as not visible). Raises InvalidInputError if no frame shows both
    shoulders.
    """
    points, vis = _as_track(keypoints, visible)
    normalised = np.where(vis[..., None], normalise_keypoints(points, vis), 0.0)
    return torch.from_numpy(normalised.astype(np.float32)), torch.from_numpy(vis)


def _sinusoid(length: int, dim: int, device) -> torch.Tensor:
    """(length, dim) fixed positional encoding (Vaswani et al. 2017, section 3.5)."""
    position = torch.arange(length, device=device, dtype=torch.float32)[:, None]
    freq = torch.exp(torch.arange(0, dim, 2, device=device, dtype=torch.float32)
                     * (-math.log(10000.0) / dim))
    table = torch.zeros(length, dim, device=device)
    table[:, 0::2] = torch.sin(position * freq)
    table[:, 1::2] = torch.cos(position * freq[: dim // 2])
    return table


class TemporalEncoder(nn.Module):
    """(B,T,D) frame features -> (B,T,D): residual 1D conv blocks, then a pre-norm
    transformer encoder. Padding frames (``valid`` False) are zeroed before every
    convolution and masked out of attention, so appending padding leaves the outputs at
    the valid frames unchanged (no normalisation layer mixes frames)."""

    def __init__(self, dim: int, conv_layers: int, temporal_kernel: int, num_layers: int,
                 num_heads: int, dropout: float) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Sequential(nn.LayerNorm(dim), _MaskedConv1d(dim, temporal_kernel), nn.SiLU(),
                          nn.Dropout(dropout))
            for _ in range(conv_layers))
        layer = nn.TransformerEncoderLayer(dim, num_heads, 2 * dim, dropout, activation="gelu",
                                           batch_first=True, norm_first=True)
        self.transformer = (nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)
                            if num_layers else None)
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
        mask = valid[..., None].to(x.dtype)
        for block in self.convs:
            norm, conv, act, drop = block
            x = x + drop(act(conv(norm(x) * mask)))
        if self.transformer is not None:
            x = x + _sinusoid(x.shape[1], x.shape[2], x.device).to(x.dtype)
            x = self.transformer(x, src_key_padding_mask=~valid)
        return self.norm(x) * mask


class _MaskedConv1d(nn.Module):
    """Conv1d over time on (B,T,D) with 'same' zero padding."""

    def __init__(self, dim: int, kernel: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(dim, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.transpose(1, 2)).transpose(1, 2)


@dataclass
class RecogniserOutput(BaseOutput):
    """What a recogniser returns.

    log_probs: (B,T',V) float32 CTC log-probabilities over ``<blank>`` + vocabulary, one
        step per ``temporal_stride`` input frames (T' = ceil(T / temporal_stride)).
    valid: (B,T') bool, False for steps made only of padding frames.
    """

    log_probs: torch.Tensor = None
    valid: torch.Tensor = None


def group_frames(x: torch.Tensor, valid: torch.Tensor, stride: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,T,…) per-frame inputs -> (B,T',stride,…) groups of consecutive frames, padding
    frames zeroed (also the ones added to make T a multiple of ``stride``), and the
    (B,T') validity of the groups (any valid frame)."""
    b, t = valid.shape
    keep = valid.view(b, t, *([1] * (x.ndim - 2)))
    x = torch.where(keep, x, torch.zeros((), dtype=x.dtype, device=x.device))
    extra = (-t) % stride
    if extra:
        x = torch.cat([x, x.new_zeros(b, extra, *x.shape[2:])], 1)
        valid = F.pad(valid, (0, extra))
    groups = (t + extra) // stride
    return x.view(b, groups, stride, *x.shape[2:]), valid.view(b, groups, stride).any(-1)


class _GlossRecogniserBase(ModelMixin, ConfigMixin):
    """Shared parts: vocabulary, language embedding, temporal encoder, CTC head."""

    def _build_head(self, vocabulary: Sequence[str], languages: Sequence[str], dim: int,
                    temporal_stride: int, conv_layers: int, temporal_kernel: int,
                    num_layers: int, num_heads: int, dropout: float) -> None:
        if dim % num_heads or dim % 2:
            raise ConfigError(f"dim ({dim}) must be even and divisible by num_heads "
                              f"({num_heads})")
        if temporal_kernel % 2 == 0:
            raise ConfigError(f"temporal_kernel must be odd, got {temporal_kernel}")
        if temporal_stride < 1:
            raise ConfigError(f"temporal_stride must be >= 1, got {temporal_stride}")
        if not languages or len(set(languages)) != len(languages):
            raise ConfigError(f"languages must be non-empty and unique, got {list(languages)}")
        self.vocabulary = GlossVocabulary(vocabulary)
        self.languages = tuple(languages)
        self.language_embedding = nn.Embedding(len(self.languages), dim)
        self.temporal = TemporalEncoder(dim, conv_layers, temporal_kernel, num_layers,
                                        num_heads, dropout)
        self.classifier = nn.Linear(dim, len(self.vocabulary))

    def language_ids(self, languages: Sequence[str]) -> torch.Tensor:
        """Language tags -> (B,) int64 indices into ``self.languages``."""
        unknown = sorted(set(languages) - set(self.languages))
        if unknown:
            raise InvalidInputError(f"the recogniser does not know the languages {unknown}; "
                                    f"it was trained on {list(self.languages)}")
        return torch.tensor([self.languages.index(lang) for lang in languages],
                            dtype=torch.long, device=self.device)

    def _head(self, features: torch.Tensor, valid: torch.Tensor,
              language: torch.Tensor) -> RecogniserOutput:
        if language.shape != features.shape[:1]:
            raise InvalidInputError(f"language must be (B,) = ({features.shape[0]},), got "
                                    f"{tuple(language.shape)}")
        x = features + self.language_embedding(language)[:, None]
        x = self.temporal(x, valid)
        return RecogniserOutput(self.classifier(x).float().log_softmax(-1), valid)

    @staticmethod
    def _check_valid(valid: torch.Tensor | None, batch: int, frames: int,
                     device) -> torch.Tensor:
        if valid is None:
            return torch.ones(batch, frames, dtype=torch.bool, device=device)
        if valid.shape != (batch, frames):
            raise InvalidInputError(f"valid must be (B,T) = ({batch},{frames}), got "
                                    f"{tuple(valid.shape)}")
        valid = valid.bool()
        if not valid.any(1).all():
            raise InvalidInputError("every sequence needs at least one valid frame")
        return valid

    def decode(self, output: RecogniserOutput) -> list[list[str]]:
        """B gloss lists read from a forward pass's output (greedy CTC decoding)."""
        return [self.vocabulary.decode(ids) for ids in
                ctc_greedy_decode(output.log_probs, output.valid, GlossVocabulary.blank)]


class VideoGlossRecogniser(_GlossRecogniserBase):
    """Sign video -> CTC log-probabilities over ``<blank>`` + ``vocabulary``.

    Every ``temporal_stride`` consecutive frames are stacked on the channel axis (early
    fusion: motion between them stays visible, and the CNN runs once per group, which
    halves the cost of a CPU training at stride 2). Per-group CNN: ``len(channels)``
    blocks of (3x3 stride-2 conv, GroupNorm, SiLU, 3x3 conv, GroupNorm, SiLU); the final
    (c, S/2^n, S/2^n) map is flattened (not pooled: where the hands are relative to the
    body is what many signs differ in) and projected to ``dim``.
    """

    @register_to_config
    def __init__(self, vocabulary: list[str], languages: list[str], input_size: int = 64,
                 channels: list[int] = (16, 32, 64, 128), dim: int = 192,
                 temporal_stride: int = 2, conv_layers: int = 2, temporal_kernel: int = 5,
                 num_layers: int = 2, num_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        stride = 2 ** len(channels)
        if not channels or input_size % stride:
            raise ConfigError(f"input_size ({input_size}) must be divisible by 2^len(channels)"
                              f" = {stride}")
        layers, previous = [], 3 * temporal_stride
        for c in channels:
            groups = math.gcd(8, c)
            layers += [nn.Conv2d(previous, c, 3, stride=2, padding=1), nn.GroupNorm(groups, c),
                       nn.SiLU(), nn.Conv2d(c, c, 3, padding=1), nn.GroupNorm(groups, c),
                       nn.SiLU()]
            previous = c
        side = input_size // stride
        self.frame_encoder = nn.Sequential(*layers, nn.Flatten(),
                                           nn.Linear(previous * side * side, dim),
                                           nn.LayerNorm(dim))
        self._build_head(vocabulary, languages, dim, temporal_stride, conv_layers,
                         temporal_kernel, num_layers, num_heads, dropout)

    def forward(self, frames: torch.Tensor, language: torch.Tensor,
                valid: torch.Tensor | None = None) -> RecogniserOutput:
        """frames (B,T,3,S,S) in [-1,1], language (B,) int64 (``language_ids``), valid (B,T)
        bool (False = padding at the end; None = all valid) -> ``RecogniserOutput``.
        Only groups that hold a valid frame go through the CNN."""
        size = self.config.input_size
        if frames.ndim != 5 or frames.shape[2:] != (3, size, size):
            raise InvalidInputError(f"frames must be (B,T,3,{size},{size}), got "
                                    f"{tuple(frames.shape)}; resize with resize_video")
        b, t = frames.shape[:2]
        valid = self._check_valid(valid, b, t, frames.device)
        groups, valid = group_frames(frames, valid, self.config.temporal_stride)
        stacked = groups[valid].flatten(1, 2)  # (N, stride*3, S, S)
        # channels_last: oneDNN's faster convolution layout on CPU (measured ~1.3x).
        encoded = self.frame_encoder(stacked.contiguous(memory_format=torch.channels_last))
        features = encoded.new_zeros(b, valid.shape[1], encoded.shape[-1])
        features[valid] = encoded
        return self._head(features, valid, language)


class PoseGlossRecogniser(_GlossRecogniserBase):
    """COCO-WholeBody keypoints -> CTC log-probabilities.

    Frame features: keypoints in shoulder widths (``pose_input``), zeroed where not
    visible, plus the visibility flags; ``temporal_stride`` consecutive frames are
    concatenated -> 2-layer MLP -> ``dim``.
    """

    @register_to_config
    def __init__(self, vocabulary: list[str], languages: list[str], dim: int = 192,
                 temporal_stride: int = 2, conv_layers: int = 2, temporal_kernel: int = 5,
                 num_layers: int = 2, num_heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.frame_encoder = nn.Sequential(
            nn.Linear(temporal_stride * NUM_KEYPOINTS * 3, 2 * dim), nn.SiLU(),
            nn.Dropout(dropout), nn.Linear(2 * dim, dim), nn.LayerNorm(dim))
        self._build_head(vocabulary, languages, dim, temporal_stride, conv_layers,
                         temporal_kernel, num_layers, num_heads, dropout)

    def forward(self, keypoints: torch.Tensor, visible: torch.Tensor, language: torch.Tensor,
                valid: torch.Tensor | None = None) -> RecogniserOutput:
        """keypoints (B,T,133,2) normalised by ``pose_input`` (shoulder widths, about
        [-3, 3]), visible (B,T,133) bool, language (B,) int64, valid (B,T) bool (False =
        padding at the end) -> ``RecogniserOutput``."""
        if keypoints.ndim != 4 or keypoints.shape[2:] != (NUM_KEYPOINTS, 2):
            raise InvalidInputError(f"keypoints must be (B,T,{NUM_KEYPOINTS},2), got "
                                    f"{tuple(keypoints.shape)}")
        if visible.shape != keypoints.shape[:3]:
            raise InvalidInputError(f"visible must be {tuple(keypoints.shape[:3])}, got "
                                    f"{tuple(visible.shape)}")
        b, t = keypoints.shape[:2]
        valid = self._check_valid(valid, b, t, keypoints.device)
        vis = visible.bool()[..., None]
        points = torch.where(vis, keypoints.to(self.dtype), 0.0)
        x = torch.cat([points, vis.to(self.dtype)], -1).flatten(2)  # (B,T,133*3)
        groups, valid = group_frames(x, valid, self.config.temporal_stride)
        features = self.frame_encoder(groups.flatten(2)) * valid[..., None].to(self.dtype)
        return self._head(features, valid, language)


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield range(start, min(n, start + batch_size))


def _pad(items: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack (T_i,…) tensors into (B,T_max,…) zeros-padded + (B,T_max) valid."""
    longest = max(len(x) for x in items)
    out = items[0].new_zeros((len(items), longest, *items[0].shape[1:]))
    valid = torch.zeros(len(items), longest, dtype=torch.bool)
    for i, x in enumerate(items):
        out[i, : len(x)] = x
        valid[i, : len(x)] = True
    return out, valid


def _check_languages(languages: Sequence[str], n: int) -> None:
    if isinstance(languages, str) or len(languages) != n:
        raise InvalidInputError(f"give one language per input ({n}), got {languages!r}")


@torch.no_grad()
def recognise(model: VideoGlossRecogniser, videos: Sequence[np.ndarray],
              languages: Sequence[str], batch_size: int = 8) -> list[list[str]]:
    """Gloss sequences read from videos.

    Args:
        videos: (T,H,W,3) uint8 square frames each (any T >= 1 and size; resized to the
            model's ``input_size`` by area interpolation).
        languages: one language tag per video (e.g. "ssl-a").
    """
    _check_languages(languages, len(videos))
    was_training = model.training
    model.eval()
    try:
        out = []
        size = model.config.input_size
        for idx in _batches(len(videos), batch_size):
            clips = [resize_video(videos[i], size) for i in idx]
            frames, valid = _pad(clips)
            frames = frames.to(model.device, model.dtype) / 127.5 - 1
            valid = valid.to(model.device)
            out += model.decode(model(frames, model.language_ids([languages[i] for i in idx]),
                                      valid))
        return out
    finally:
        model.train(was_training)


@torch.no_grad()
def recognise_poses(model: PoseGlossRecogniser, keypoints: Sequence[np.ndarray],
                    visible: Sequence[np.ndarray], languages: Sequence[str],
                    batch_size: int = 32) -> list[list[str]]:
    """Gloss sequences read from keypoint tracks: (T,133,2) pixels (COCO-WholeBody) and
    (T,133) bool each. A track in which no frame shows both shoulders cannot be normalised
    and reads as no glosses ([])."""
    _check_languages(languages, len(keypoints))
    if len(visible) != len(keypoints):
        raise InvalidInputError(f"{len(keypoints)} keypoint tracks but {len(visible)} "
                                f"visibility tracks")
    was_training = model.training
    model.eval()
    try:
        model.language_ids(languages)  # unknown languages fail before any work
        out: list[list[str]] = [[] for _ in keypoints]
        readable = [i for i in range(len(keypoints)) if shows_shoulders(keypoints[i], visible[i])]
        for idx in _batches(len(readable), batch_size):
            tracks = [pose_input(keypoints[readable[i]], visible[readable[i]]) for i in idx]
            points, valid = _pad([p for p, _ in tracks])
            vis, _ = _pad([v for _, v in tracks])
            device = model.device
            output = model(points.to(device), vis.to(device),
                           model.language_ids([languages[readable[i]] for i in idx]),
                           valid.to(device))
            for i, glosses in zip(idx, model.decode(output), strict=True):
                out[readable[i]] = glosses
        return out
    finally:
        model.train(was_training)
