"""Text -> sign tokens (stage III): a transformer encoder over text ids and an
autoregressive decoder over frames that predicts all FSQ tokens of a frame in one step.

Decoding follows SignViP / T2M-GPT: frame ``t``'s input is the sum of one embedding per
token slot (slot-specific tables), the decoder attends causally over frames and across to
the text, and one head per slot gives the next frame's ``tokens_per_frame`` codes; a
separate logit says whether the sequence ends after the frames so far. Shapes:

    text_ids      (B,L) int64 in [0, vocab_size), pad_id where ``text_mask`` is False
    frame_tokens  (B,T,S) int64 in [0, codebook_size), S = tokens_per_frame
    code logits   (B,T+1,S,codebook_size): position t predicts frame t+1's codes (t < T)
                  (B,T+1,S,sum(levels)) with ``levels``: one distribution per FSQ level
    end logits    (B,T+1): position t says "the sequence has exactly t frames"

With ``levels`` (the FSQ autoencoder's, e.g. [5,5,5,5]) a code is read as its FSQ digits
(code = sum_i digit_i * prod(levels[:i]), the order of ``vector_quantize_pytorch.FSQ``):
the head predicts each digit (5-way each, not 625-way), codes are embedded as the sum of
their digits' embeddings, and sampling draws the digits of a code independently given
the frames so far. Neighbouring lattice points then share most parameters.

With ``max_segments`` (sign timing, e.g. SynthSign's gloss spans) the decoder also knows
where it is in the signing: the frames are cut into segments (rest, a sign's stroke, the
transition, the next stroke, ...) and frame ``t``'s input adds an embedding of its segment
index and one of its frame count within that segment. A third head says, at position t
(the one predicting frame t's codes, frames counted from 0), whether frame t+1 starts a
new segment; at inference the model's own decisions advance the index, so it tracks
which sign it is on instead of inferring it from its (noisy) frames so far::

    segment_starts  (B,T) bool, True where frame t (from 0) starts a segment (t = 0 ignored)
    boundary logits (B,T+1): position t says "frame t+1 (from 0) starts a new segment"

With ``signers`` (the ids of the corpus' signers) every decoder input also gets an
embedding of the signer the frames are for, index 0 standing for "a signer it does not
know": signers differ in handedness (a left-handed signer mirrors every sign), speed and
signing space, so the tokens of one sentence differ by signer, and a translator told
whom it writes for need not guess (and mix) signers frame by frame::

    signer_ids      (B,) int64 in [0, len(signers)], 0 = unknown signer

With ``frames_per_step`` k > 1 one decoder step writes k consecutive frames: its input
is the sum of the k frames' slot embeddings (k*S slots, each with its own table) and its
heads give the next k frames' codes, so a sentence takes T/k steps (the per-step cost at
batch 1 is mostly fixed overhead, so decoding is ~k times faster). Training sequences are
padded to a multiple of k by repeating their last frame (``group_frames``); the model's
forward, loss and sampling helpers work on these steps (B,T/k,k*S) as if each were one
frame of k*S tokens, while ``generate`` and ``stream`` return frames (T,S).

Generation keeps a key/value cache per decoder layer (the text's cross-attention keys
and values are computed once), so each new frame costs one position, not the prefix.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from diffusers import ConfigMixin, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.utils import BaseOutput
from torch import nn

from signgen.errors import InvalidInputError


@dataclass
class TranslatorOutput(BaseOutput):
    """code_logits (B,T+1,S,C) (or (B,T+1,S,sum(levels)) per FSQ digit, ``levels`` set),
    end_logits (B,T+1) and, with segments, boundary_logits (B,T+1); see the module
    docstring."""

    code_logits: torch.Tensor = None
    end_logits: torch.Tensor = None
    levels: tuple[int, ...] | None = None
    boundary_logits: torch.Tensor | None = None


def code_digits(codes: torch.Tensor, levels) -> torch.Tensor:
    """FSQ codes (...) int64 -> their digits (..., len(levels)), digit i in
    [0, levels[i]) (``vector_quantize_pytorch.FSQ``'s mixed-radix order)."""
    basis = torch.cumprod(torch.tensor([1, *levels[:-1]], device=codes.device), 0)
    return codes[..., None] // basis % torch.tensor(list(levels), device=codes.device)


def digits_to_codes(digits: torch.Tensor, levels) -> torch.Tensor:
    """Inverse of :func:`code_digits`: (..., len(levels)) -> (...) int64."""
    basis = torch.cumprod(torch.tensor([1, *levels[:-1]], device=digits.device), 0)
    return (digits * basis).sum(-1)


def group_frames(frame_tokens: torch.Tensor, num_frames: torch.Tensor, k: int
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Frames (B,T,S) with (B,) real lengths -> decoder steps of ``k`` frames
    (B,ceil(T/k),k*S) and (B,) step counts ceil(num_frames/k). Every frame after a row's
    last real one (its padding, and the rest of its last step) is that frame repeated, so
    a real step is never half padding. Identity for k = 1."""
    if k == 1:
        return frame_tokens, num_frames
    b, t, s = frame_tokens.shape
    steps = -(-t // k)
    last = (num_frames.to(frame_tokens.device) - 1).clamp(min=0)
    index = torch.minimum(torch.arange(steps * k, device=frame_tokens.device)[None],
                          last[:, None])  # (B,steps*k)
    grouped = frame_tokens.gather(1, index[..., None].expand(-1, -1, s))
    return grouped.reshape(b, steps, k * s), -(-num_frames // k)


def segment_positions(segment_starts: torch.Tensor, max_segments: int,
                      max_segment_frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(B,T) bool segment starts -> the segment index and the frame count within the
    segment of decoder positions 0..T, each (B,T+1) int64 (position t is frame t's; the
    extra position T continues the last segment), clamped to ``max_segments - 1`` and
    ``max_segment_frames - 1``."""
    starts = segment_starts.bool()
    b, t = starts.shape
    starts = torch.cat([starts, starts.new_zeros(b, 1)], dim=1)
    starts[:, 0] = False  # frame 0 opens segment 0
    index = torch.arange(t + 1, device=starts.device).expand(b, -1)
    segment = starts.long().cumsum(dim=1)
    last_start = torch.where(starts, index, torch.zeros_like(index)).cummax(dim=1).values
    return (segment.clamp(max=max_segments - 1),
            (index - last_start).clamp(max=max_segment_frames - 1))


def span_segment_starts(spans, num_frames: int, source_frames: int | None = None
                        ) -> torch.Tensor:
    """Sign timing -> (num_frames,) bool segment starts: every span's first frame and the
    frame after its last (``spans``: (gloss, first, last + 1) in frames of a clip of
    ``source_frames``, default ``num_frames``; rescaled when the tokens have another rate)."""
    source_frames = source_frames or num_frames
    starts = torch.zeros(num_frames, dtype=torch.bool)
    for _, first, end in spans:
        for frame in (first, end):
            frame = round(frame * num_frames / source_frames)
            if 0 < frame < num_frames:
                starts[frame] = True
    return starts


def signer_index(signers: list[str] | None, signer_id: str | None) -> int:
    """A signer's ``signer_ids`` entry: its place in ``signers`` + 1, or 0 ("unknown")
    for None or a signer not among them."""
    signers = signers or []
    return signers.index(signer_id) + 1 if signer_id in signers else 0


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    """(B,N,D) -> (B,heads,N,D/heads)."""
    b, n, d = x.shape
    return x.view(b, n, heads, d // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    """(B,heads,N,d) -> (B,N,heads*d)."""
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class DecoderLayer(nn.Module):
    """Pre-norm decoder layer: causal self-attention (with an optional key/value cache),
    cross-attention to the text, MLP. Attention through PyTorch SDPA."""

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.norm_self, self.qkv, self.out_self = nn.LayerNorm(dim), nn.Linear(dim, 3 * dim), \
            nn.Linear(dim, dim)
        self.norm_cross, self.q_cross, self.kv_cross, self.out_cross = (
            nn.LayerNorm(dim), nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim))
        self.norm_mlp = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, ffn), nn.GELU(), nn.Dropout(dropout),
                                 nn.Linear(ffn, dim))
        self.drop = nn.Dropout(dropout)

    def text_keys_values(self, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,L,D) encoded text -> cross-attention keys and values (B,heads,L,D/heads)."""
        k, v = self.kv_cross(memory).chunk(2, dim=-1)
        return _heads(k, self.heads), _heads(v, self.heads)

    def forward(self, x: torch.Tensor, text_kv: tuple[torch.Tensor, torch.Tensor],
                text_attn_mask: torch.Tensor | None, cache: KVCache | None = None,
                ) -> torch.Tensor:
        """x (B,N,D) new positions; text_attn_mask (B,1,1,L) bool (True = a real text
        token) or None for all real; ``cache`` holds the keys and values of the earlier
        positions and takes those of the N new ones. Returns x."""
        p = self.dropout if self.training else 0.0
        q, k, v = self.qkv(self.norm_self(x)).chunk(3, dim=-1)
        q, k, v = _heads(q, self.heads), _heads(k, self.heads), _heads(v, self.heads)
        if cache is not None:
            k, v = cache.append(k, v)
        n, total = q.shape[2], k.shape[2]
        # Causal over all positions: new position i (absolute total - n + i) sees <= itself.
        # One new position sees every cached one: no mask needed.
        causal = None if n == 1 else torch.ones(n, total, dtype=torch.bool,
                                                 device=x.device).tril(total - n)
        attended = F.scaled_dot_product_attention(q, k, v, attn_mask=causal, dropout_p=p)
        x = x + self.drop(self.out_self(_merge(attended)))
        q = _heads(self.q_cross(self.norm_cross(x)), self.heads)
        attended = F.scaled_dot_product_attention(q, *text_kv, attn_mask=text_attn_mask,
                                                  dropout_p=p)
        x = x + self.drop(self.out_cross(_merge(attended)))
        return x + self.drop(self.mlp(self.norm_mlp(x)))


class KVCache:
    """Self-attention keys and values of one decoder layer, preallocated for ``capacity``
    positions (appending copies only the new positions, never the prefix)."""

    def __init__(self, batch: int, heads: int, head_dim: int, capacity: int,
                 like: torch.Tensor) -> None:
        self.keys = like.new_empty(batch, heads, capacity, head_dim)
        self.values = like.new_empty(batch, heads, capacity, head_dim)
        self.length = 0

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Store (B,heads,N,d) keys/values after the cached ones; returns all (B,heads,P+N,d)."""
        end = self.length + k.shape[2]
        if end > self.keys.shape[2]:
            raise InvalidInputError(f"KV cache of {self.keys.shape[2]} positions is full")
        self.keys[:, :, self.length:end] = k
        self.values[:, :, self.length:end] = v
        self.length = end
        return self.keys[:, :, :end], self.values[:, :, :end]


def _filter_logits(logits: torch.Tensor, top_k: int, top_p: float) -> torch.Tensor:
    """Keep the ``top_k`` largest logits (0: all) and the smallest set whose probability
    reaches ``top_p`` (1: all); the rest become -inf. logits (..., C)."""
    if top_k > 0:
        kth = logits.topk(min(top_k, logits.shape[-1]), dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p < 1.0:
        sorted_logits, order = logits.sort(dim=-1, descending=True)
        probs = sorted_logits.softmax(-1)
        # Drop a code when the codes ranked above it already reach top_p.
        drop = probs.cumsum(-1) - probs >= top_p
        sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
        logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
    return logits


def _choose(logits: torch.Tensor, greedy: bool, temperature: float, top_k: int, top_p: float,
            generator: torch.Generator | None, sizes: tuple[int, ...] | None = None
            ) -> list[torch.Tensor]:
    """(B,S,K) logits of one or several distributions (``sizes``, their widths along K;
    None: one of width K) -> one (B,S) int64 pick per distribution: the argmax, or a draw
    from the ``top_k`` / ``top_p`` filtered distribution at ``temperature``. Draws use the
    Gumbel-max trick (argmax of logits + Gumbel noise is a sample of their softmax) with
    one uniform per logit from ``generator`` on the CPU, so a seed gives the same codes on
    any device type; 3x cheaper than ``torch.multinomial`` per frame here."""
    sizes = sizes or (logits.shape[-1],)
    parts = logits.split(sizes, dim=-1)
    if greedy:
        return [part.argmax(-1) for part in parts]
    uniform = torch.rand(logits.shape, generator=generator).clamp_(min=1e-20)
    noise = (-torch.log(-torch.log(uniform))).to(logits.device).split(sizes, dim=-1)
    return [(_filter_logits(part / temperature, top_k, top_p) + gumbel).argmax(-1)
            for part, gumbel in zip(parts, noise, strict=True)]


class TextToFramesMixin:
    """The parts every text -> frames model here shares (``SignTranslator``, the
    regression baseline): a transformer text encoder with learned positions and a
    pre-norm frame decoder (``DecoderLayer`` stack) with a learned start frame. Builders
    keep the attribute names (and so the saved weights' names) of ``SignTranslator``."""

    def _check_sizes(self, *sizes: int, dim: int, num_heads: int, vocab_size: int,
                     pad_id: int) -> None:
        """InvalidInputError unless every size is >= 1, heads divide dim and pad_id is a
        vocabulary id."""
        if min(sizes) < 1:
            raise InvalidInputError(f"{type(self).__name__} sizes must all be >= 1")
        if dim % num_heads:
            raise InvalidInputError(f"num_heads={num_heads} must divide dim={dim}")
        if not 0 <= pad_id < vocab_size:
            raise InvalidInputError(f"pad_id {pad_id} outside the vocabulary of {vocab_size}")

    def _build_text_encoder(self, vocab_size: int, dim: int, num_heads: int, layers: int,
                            ffn_mult: int, dropout: float, max_text_length: int,
                            pad_id: int) -> None:
        self.text_embed = nn.Embedding(vocab_size, dim, padding_idx=pad_id)
        self.text_position = nn.Parameter(torch.randn(max_text_length, dim) * 0.02)
        layer = nn.TransformerEncoderLayer(dim, num_heads, ffn_mult * dim, dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.encoder_norm = nn.LayerNorm(dim)

    def _build_frame_decoder(self, dim: int, num_heads: int, layers: int, ffn_mult: int,
                             dropout: float, max_frames: int) -> None:
        self.start_frame = nn.Parameter(torch.randn(dim) * 0.02)
        self.frame_position = nn.Parameter(torch.randn(max_frames + 1, dim) * 0.02)
        self.decoder = nn.ModuleList(DecoderLayer(dim, num_heads, ffn_mult * dim, dropout)
                                     for _ in range(layers))
        self.decoder_norm = nn.LayerNorm(dim)

    def encode_text(self, text_ids: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """(B,L) ids + (B,L) bool mask -> (B,L,D) encoded text."""
        if text_ids.ndim != 2 or text_ids.shape != text_mask.shape:
            raise InvalidInputError(f"text_ids and text_mask must both be (B,L), got "
                                    f"{tuple(text_ids.shape)} and {tuple(text_mask.shape)}")
        length = text_ids.shape[1]
        if length > self.config.max_text_length:
            raise InvalidInputError(f"text of {length} ids exceeds max_text_length "
                                    f"{self.config.max_text_length}")
        if not text_mask.any(dim=1).all():
            raise InvalidInputError("every text needs at least one token")
        if text_ids.min() < 0 or text_ids.max() >= self.config.vocab_size:
            raise InvalidInputError(f"text ids must lie in [0, {self.config.vocab_size})")
        x = self.text_embed(text_ids) + self.text_position[:length]
        return self.encoder_norm(self.encoder(x, src_key_padding_mask=~text_mask))


class SignTranslator(TextToFramesMixin, ModelMixin, ConfigMixin):
    """Text ids (with a leading sign-language tag) -> FSQ token frames.

    Args:
        vocab_size: text vocabulary (the tokenizer's, special tokens included).
        codebook_size, tokens_per_frame: the FSQ autoencoder's (C and S).
        dim, num_heads, encoder_layers, decoder_layers, ffn_mult, dropout: transformer
            sizes (heads must divide dim).
        max_text_length, max_frames: longest text (ids) and token sequence (frames).
        pad_id: the text padding id.
        levels: the FSQ levels (their product is ``codebook_size``) to predict codes digit
            by digit; None: one ``codebook_size``-way distribution per slot.
        language_embedding: also add an embedding of the text's first id (the sign-language
            tag) to every decoder input frame, so that every frame step, not only the
            cross-attention, sees which language it writes (zero at initialisation).
        max_segments: 0, or the number of segment indices to embed (segment conditioning,
            see the module docstring; later segments share the last index).
        max_segment_frames: frame counts within a segment to embed (longer ones share the
            last).
        signers: None, or the signer ids whose embeddings the model learns (signer
            conditioning: ``signer_ids`` index 1.. into this list, 0 is "unknown").
        mirrored_signers: the signers whose training tokens were those of their samples'
            mirror images (canonical handedness, see
            ``signgen.data.synthsign.mirroring``): for them the model signs right-handed
            and its caller mirrors the decoded output back (:meth:`mirrors`). Metadata
            only: no weights depend on it.
    """

    @register_to_config
    def __init__(self, vocab_size: int, codebook_size: int = 625, tokens_per_frame: int = 16,
                 dim: int = 256, num_heads: int = 4, encoder_layers: int = 3,
                 decoder_layers: int = 3, ffn_mult: int = 4, dropout: float = 0.1,
                 max_text_length: int = 128, max_frames: int = 256, pad_id: int = 0,
                 levels: list[int] | None = None, language_embedding: bool = False,
                 max_segments: int = 0, max_segment_frames: int = 32,
                 signers: list[str] | None = None,
                 mirrored_signers: list[str] | None = None, frames_per_step: int = 1) -> None:
        super().__init__()
        self._check_sizes(vocab_size, codebook_size, tokens_per_frame, dim, num_heads,
                          encoder_layers, decoder_layers, ffn_mult, max_text_length, max_frames,
                          frames_per_step, dim=dim, num_heads=num_heads, vocab_size=vocab_size,
                          pad_id=pad_id)
        if frames_per_step > 1 and max_segments:
            raise InvalidInputError("frames_per_step > 1 does not support segments "
                                    "(max_segments must be 0)")
        if levels is not None:
            levels = [int(level) for level in levels]
            if min(levels, default=0) < 2 or math.prod(levels) != codebook_size:
                raise InvalidInputError(f"levels {levels} must be >= 2 each and multiply to "
                                        f"codebook_size {codebook_size}")
        if max_segments < 0 or max_segment_frames < 1:
            raise InvalidInputError(f"max_segments must be >= 0 and max_segment_frames >= 1, "
                                    f"got {max_segments} and {max_segment_frames}")
        self.levels = tuple(levels) if levels is not None else None
        self._build_text_encoder(vocab_size, dim, num_heads, encoder_layers, ffn_mult, dropout,
                                 max_text_length, pad_id)
        # Per slot (S per frame, k frames per step) a table of the C codes (or of the
        # sum(levels) digits), stored as one (k*S*K, D) table indexed by slot*K + code (or
        # + level offset + digit).
        width = codebook_size if levels is None else sum(levels)
        self.slots = tokens_per_frame * frames_per_step
        self.max_steps = -(-max_frames // frames_per_step)
        self.code_embed = nn.Embedding(self.slots * width, dim)
        self._build_frame_decoder(dim, num_heads, decoder_layers, ffn_mult, dropout,
                                  self.max_steps)
        if language_embedding:
            self.language_embed = nn.Embedding(vocab_size, dim)
            nn.init.zeros_(self.language_embed.weight)
        if signers is not None:
            if len(set(signers)) != len(signers) or not all(isinstance(s, str) for s in signers):
                raise InvalidInputError(f"signers must be distinct ids, got {signers}")
            self.signer_embed = nn.Embedding(len(signers) + 1, dim)
            nn.init.normal_(self.signer_embed.weight, std=0.02)
        if max_segments:
            self.segment_embed = nn.Embedding(max_segments, dim)
            self.segment_frame_embed = nn.Embedding(max_segment_frames, dim)
            for table in (self.segment_embed, self.segment_frame_embed):
                nn.init.normal_(table.weight, std=0.02)
            self.boundary_head = nn.Linear(dim, 1)
        self.code_head = nn.Linear(dim, self.slots * width)
        self.end_head = nn.Linear(dim, 1)
        self.register_buffer("slot_offsets", torch.arange(self.slots) * width,
                             persistent=False)
        level_offsets = torch.tensor([0, *itertools.accumulate(levels[:-1])]) if levels else None
        self.register_buffer("level_offsets", level_offsets, persistent=False)

    # -- parts ---------------------------------------------------------------------------
    def embed_frames(self, frame_tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B,T,k*S) codes of T steps -> (B,T,D) decoder inputs at positions
        offset+1..offset+T (position 0 is the start frame)."""
        if frame_tokens.shape[-1] != self.slots:
            k, s = self.config.frames_per_step, self.config.tokens_per_frame
            raise InvalidInputError(
                f"frames must have {s} tokens, got {frame_tokens.shape[-1]}" if k == 1 else
                f"steps must have {self.slots} tokens ({k} frames of {s}; group_frames "
                f"makes them), got {frame_tokens.shape[-1]}")
        if frame_tokens.numel() and (frame_tokens.min() < 0
                                     or frame_tokens.max() >= self.config.codebook_size):
            raise InvalidInputError(f"frame tokens must lie in [0, {self.config.codebook_size})")
        x = self._embed_codes(frame_tokens)
        return x + self.frame_position[offset + 1:offset + 1 + frame_tokens.shape[1]]

    def group_frames(self, frame_tokens: torch.Tensor, num_frames: torch.Tensor
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`group_frames` with this model's ``frames_per_step``."""
        return group_frames(frame_tokens, num_frames, self.config.frames_per_step)

    def ungroup_frames(self, step_tokens: torch.Tensor) -> torch.Tensor:
        """Steps (...,T,k*S) -> frames (...,T*k,S)."""
        s = self.config.tokens_per_frame
        return step_tokens.reshape(*step_tokens.shape[:-2], -1, s)

    def mirrors(self, signer_id: str | None) -> bool:
        """True if this model learnt ``signer_id``'s signing as its mirror image (so its
        output for that signer must be mirrored back)."""
        return signer_id is not None and signer_id in (self.config.mirrored_signers or ())

    def signer_index(self, signer_id: str | None) -> int:
        """The ``signer_ids`` entry of a signer (0 for None or one it was not trained on)."""
        return signer_index(self.config.signers, signer_id)

    def _signer(self, signer_ids: torch.Tensor | None, batch: int,
                device: torch.device) -> torch.Tensor | float:
        """(B,) signer indices (None: all unknown) -> (B,1,D) embeddings; 0 without
        signer conditioning (then ``signer_ids`` must be None)."""
        if self.config.signers is None:
            if signer_ids is not None:
                raise InvalidInputError("this translator has no signer conditioning: "
                                        "signer_ids must be None")
            return 0.0
        if signer_ids is None:
            signer_ids = torch.zeros(batch, dtype=torch.long, device=device)
        if signer_ids.shape != (batch,) or signer_ids.min() < 0 \
                or signer_ids.max() > len(self.config.signers):
            raise InvalidInputError(f"signer_ids must be ({batch},) in [0, "
                                    f"{len(self.config.signers)}], got {signer_ids.tolist()}")
        return self.signer_embed(signer_ids.to(device))[:, None]

    def _language(self, text_ids: torch.Tensor) -> torch.Tensor | float:
        """(B,L) ids -> (B,1,D), the embedding of each text's tag (its first id) that
        ``language_embedding`` adds to every decoder input; 0 without it."""
        if not self.config.language_embedding:
            return 0.0
        return self.language_embed(text_ids[:, :1])

    def _embed_codes(self, codes: torch.Tensor) -> torch.Tensor:
        """(...,S) codes in range -> (...,D): the sum of their slot tables' rows (of their
        digits' rows with ``levels``)."""
        if self.levels is None:
            return self.code_embed(codes + self.slot_offsets).sum(dim=-2)
        rows = code_digits(codes, self.levels) + self.level_offsets  # (...,S,levels)
        return self.code_embed(rows + self.slot_offsets[:, None]).sum(dim=(-3, -2))

    def _segments(self, segment: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Segment indices and within-segment frame counts (B,N) int64 -> (B,N,D)."""
        return self.segment_embed(segment) + self.segment_frame_embed(frame)

    def _decode(self, x: torch.Tensor, text_kv: list, text_attn_mask: torch.Tensor | None,
                caches: list[KVCache] | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """(B,N,D) decoder inputs -> code logits (B,N,S,C), end logits (B,N) and boundary
        logits (B,N) (None without segments)."""
        for i, layer in enumerate(self.decoder):
            x = layer(x, text_kv[i], text_attn_mask, None if caches is None else caches[i])
        x = self.decoder_norm(x)
        b, n, _ = x.shape
        codes = self.code_head(x).view(b, n, self.slots, -1)
        boundary = self.boundary_head(x).squeeze(-1) if self.config.max_segments else None
        return codes, self.end_head(x).squeeze(-1), boundary

    @staticmethod
    def _text_attn_mask(text_mask: torch.Tensor) -> torch.Tensor | None:
        """(B,L) bool -> the (B,1,1,L) cross-attention mask, or None when no text is padded."""
        return None if bool(text_mask.all()) else text_mask[:, None, None]

    # -- training --------------------------------------------------------------------------
    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                frame_tokens: torch.Tensor, segment_starts: torch.Tensor | None = None,
                signer_ids: torch.Tensor | None = None) -> TranslatorOutput:
        """Teacher forcing: text (B,L) and the target frames (B,T,S) -> logits for every
        position 0..T (see the module docstring); with ``frames_per_step`` k > 1 the
        targets are steps (B,T,k*S) from :meth:`group_frames` and T counts steps.
        ``segment_starts`` (B,T) bool, the true segmentation, is required with
        ``max_segments`` and refused without; as (B,T+1) its last entry says whether
        position T (after the last frame) opens a segment (False for (B,T), which is what
        training teaches the model to decide there).
        ``signer_ids`` (B,) int64: see the module docstring (None: unknown signers)."""
        if frame_tokens.ndim != 3:
            raise InvalidInputError(f"frame_tokens must be (B,T,S), got "
                                    f"{tuple(frame_tokens.shape)}")
        if frame_tokens.shape[1] > self.max_steps:
            raise InvalidInputError(f"{frame_tokens.shape[1]} steps of "
                                    f"{self.config.frames_per_step} frame(s) exceed max_frames "
                                    f"{self.config.max_frames}")
        if (segment_starts is None) != (not self.config.max_segments):
            raise InvalidInputError("segment_starts must be given exactly when the model has "
                                    f"segments (max_segments={self.config.max_segments})")
        b, t = frame_tokens.shape[:2]
        if segment_starts is not None and (segment_starts.ndim != 2 or len(segment_starts) != b
                                           or segment_starts.shape[1] not in (t, t + 1)):
            raise InvalidInputError(f"segment_starts must be (B,T) or (B,T+1) with (B,T) = "
                                    f"{(b, t)}, got {tuple(segment_starts.shape)}")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        start = (self.start_frame + self.frame_position[0]).expand(len(memory), 1, -1)
        x = torch.cat([start, self.embed_frames(frame_tokens)], dim=1) + self._language(text_ids)
        x = x + self._signer(signer_ids, b, x.device)
        if segment_starts is not None:
            segment, frame = segment_positions(segment_starts, self.config.max_segments,
                                               self.config.max_segment_frames)
            x = x + self._segments(segment[:, :t + 1], frame[:, :t + 1])
        codes, end, boundary = self._decode(x, text_kv, self._text_attn_mask(text_mask))
        return TranslatorOutput(code_logits=codes, end_logits=end, levels=self.levels,
                                boundary_logits=boundary)

    # -- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                 max_frames: int | None = None, min_frames: int = 1, greedy: bool = True,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 generator: torch.Generator | None = None,
                 signer_ids: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Decode token frames for each text: a list of B tensors (T_i,S) int64.

        A sequence ends when its end probability exceeds 0.5 (after ``min_frames``
        frames) or at ``max_frames`` (default the model's). ``greedy`` takes each slot's
        most likely code; otherwise codes are sampled at ``temperature`` from the
        ``top_k`` / ``top_p`` filtered distribution with ``generator`` (on the CPU, so a
        seed gives the same tokens on any device type). ``signer_ids`` (B,): whom the
        frames are for (signer conditioning; None: unknown signers).
        """
        chunks, lengths = [], torch.zeros(len(text_ids), dtype=torch.long)
        for chosen, running in self._decode_steps(text_ids, text_mask, max_frames, min_frames,
                                                  greedy, temperature, top_k, top_p, generator,
                                                  signer_ids):
            chunks.append(chosen)
            lengths += running.long() * chosen.shape[1]  # a prefix of each row is alive
        if not chunks:
            return [torch.zeros(0, self.config.tokens_per_frame, dtype=torch.long)
                    for _ in range(len(text_ids))]
        tokens = torch.cat(chunks, dim=1).cpu()  # (B,T,S)
        return [tokens[i, :int(lengths[i])] for i in range(len(tokens))]

    def stream(self, text_ids: torch.Tensor, text_mask: torch.Tensor, chunk_frames: int = 16,
               **kwargs) -> Iterator[torch.Tensor]:
        """:meth:`generate` for one text ((1,L) ids), yielding its frames in chunks of
        ``chunk_frames`` ((n,S) int64, the last may be shorter) as they are decoded, so
        that later stages can work on them meanwhile. The chunks concatenate to exactly
        what ``generate`` returns for the same arguments (and generator state)."""
        if len(text_ids) != 1:
            raise InvalidInputError(f"stream decodes one text, got a batch of {len(text_ids)}")
        if chunk_frames < 1:
            raise InvalidInputError(f"chunk_frames must be >= 1, got {chunk_frames}")
        pending = []
        for chosen, _ in self._decode_steps(text_ids, text_mask, **kwargs):
            for frame in chosen[0]:
                pending.append(frame)
                if len(pending) == chunk_frames:
                    yield torch.stack(pending).cpu()
                    pending = []
        if pending:
            yield torch.stack(pending).cpu()

    def _decode_steps(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                      max_frames: int | None = None, min_frames: int = 1, greedy: bool = True,
                      temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      generator: torch.Generator | None = None,
                      signer_ids: torch.Tensor | None = None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """The decoding loop of :meth:`generate`: per decoder step, the codes of its frames
        (B,n,S) (n = ``frames_per_step``, fewer on a last step that would pass
        ``max_frames``) and which sequences (B,) bool are still running (their step is
        real); ends when every sequence has ended or after ceil(``max_frames``/k) steps."""
        max_frames = self.config.max_frames if max_frames is None else max_frames
        if not 1 <= min_frames <= max_frames <= self.config.max_frames:
            raise InvalidInputError(f"need 1 <= min_frames <= max_frames <= "
                                    f"{self.config.max_frames}, got {min_frames}, {max_frames}")
        k = self.config.frames_per_step
        min_steps, max_steps = -(-min_frames // k), -(-max_frames // k)
        if not greedy and (temperature <= 0 or not 0 < top_p <= 1 or top_k < 0):
            raise InvalidInputError("sampling needs temperature > 0, 0 < top_p <= 1, top_k >= 0")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        batch = len(memory)
        # added to every decoder input: the tag's and the signer's embeddings (if any)
        every_frame = self._language(text_ids) + self._signer(signer_ids, batch, memory.device)
        x = (self.start_frame + self.frame_position[0]).expand(batch, 1, -1) + every_frame
        text_attn_mask = self._text_attn_mask(text_mask)
        head_dim = self.config.dim // self.config.num_heads
        caches = [KVCache(batch, self.config.num_heads, head_dim, max_steps + 1, like=memory)
                  for _ in self.decoder]
        finished = torch.zeros(batch, dtype=torch.bool)
        segments = self.config.max_segments
        if segments:  # frame 0: segment 0, its first frame
            segment = torch.zeros(batch, dtype=torch.long, device=memory.device)
            segment_frame = torch.zeros_like(segment)
            x = x + self._segments(segment, segment_frame)[:, None]
        for t in range(max_steps + 1):
            codes, end, boundary = self._decode(x, text_kv, text_attn_mask, caches)
            if t >= min_steps:
                finished |= (end[:, -1].float().sigmoid() > 0.5).cpu()
            if finished.all() or t == max_steps:
                return
            logits = codes[:, -1].float()  # (B,S,C) or (B,S,sum(levels))
            picks = _choose(logits, greedy, temperature, top_k, top_p, generator, self.levels)
            if self.levels is None:
                chosen = picks[0]
            else:  # each digit from its level's distribution
                chosen = digits_to_codes(torch.stack(picks, dim=-1), self.levels)
            frames = self.ungroup_frames(chosen[:, None])  # (B,k,S)
            yield frames[:, :max_frames - t * k], ~finished
            # chosen codes are in range by construction: index the tables directly.
            x = (self._embed_codes(chosen) + self.frame_position[t + 1])[:, None] + every_frame
            if segments:  # does frame t+1 start a new segment? (drawn like the codes)
                p = boundary[:, -1].float().sigmoid().cpu()
                new = p > 0.5 if greedy else torch.rand(batch, generator=generator) < p
                new = new.to(segment.device)
                segment = (segment + new.long()).clamp(max=segments - 1)
                segment_frame = torch.where(new, 0, segment_frame + 1).clamp(
                    max=self.config.max_segment_frames - 1)
                x = x + self._segments(segment, segment_frame)[:, None]


def translator_loss(output: TranslatorOutput, frame_tokens: torch.Tensor,
                    num_frames: torch.Tensor, segment_starts: torch.Tensor | None = None
                    ) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of every real frame's codes (mean over frames and slots; with
    ``output.levels`` the sum over a code's digits) + binary cross-entropy of the end
    decision at every position up to each sequence's end + with segments, binary
    cross-entropy of the boundary decision (``segment_starts`` (B,T) bool) at every
    position of a real frame (the one after the last frame: no boundary).
    ``code_accuracy``: the share of codes predicted exactly (every digit);
    ``boundary_accuracy``: of the boundary decisions.

    frame_tokens (B,T,S) targets (padding beyond ``num_frames`` (B,) is ignored)."""
    b, t, s = frame_tokens.shape
    positions = torch.arange(t + 1, device=frame_tokens.device)
    real = positions[None, :t] < num_frames[:, None]  # (B,T): positions that predict a frame
    logits = output.code_logits[:, :t][real].float()  # position i predicts frame i
    targets = frame_tokens[real]  # (N,S)
    if output.levels is None:
        ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        with torch.no_grad():
            accuracy = (logits.argmax(-1) == targets).float().mean()
    else:
        digits = code_digits(targets, output.levels)  # (N,S,levels)
        parts = logits.split(output.levels, dim=-1)
        ce = sum(F.cross_entropy(part.reshape(-1, part.shape[-1]), digits[..., i].reshape(-1))
                 for i, part in enumerate(parts))
        with torch.no_grad():
            predicted = torch.stack([part.argmax(-1) for part in parts], dim=-1)
            accuracy = (predicted == digits).all(-1).float().mean()
    upto = positions[None] <= num_frames[:, None]  # (B,T+1)
    end_target = (positions[None] == num_frames[:, None]).float()
    bce = F.binary_cross_entropy_with_logits(output.end_logits[upto].float(), end_target[upto])
    extra = {"code_ce": ce.item(), "end_bce": bce.item(), "code_accuracy": accuracy.item()}
    loss = ce + bce
    if output.boundary_logits is not None:
        if segment_starts is None or segment_starts.shape != frame_tokens.shape[:2]:
            raise InvalidInputError("a model with segments needs segment_starts (B,T)")
        # Position i < num_frames says whether frame i + 1 starts a segment; after the last
        # frame it does not (as teacher forcing's position T continues the last segment).
        decided = positions[None, :t] < num_frames[:, None]  # (B,T)
        following = torch.cat([segment_starts[:, 1:].bool(),
                               segment_starts.new_zeros(b, 1, dtype=torch.bool)], dim=1)
        following &= positions[None, 1:] < num_frames[:, None]
        logits = output.boundary_logits[:, :t][decided].float()
        target = following[decided].float()
        boundary = F.binary_cross_entropy_with_logits(logits, target)
        loss = loss + boundary
        extra["boundary_bce"] = boundary.item()
        extra["boundary_accuracy"] = ((logits > 0) == target.bool()).float().mean().item()
    return loss, extra


def corrupt_tokens(frame_tokens: torch.Tensor, rate: float, codebook_size: int,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """Replace each code of the decoder's *input* frames with a random code with
    probability ``rate`` (targets stay clean), so that the decoder cannot lean on copying
    the previous frame (consecutive frames often share most codes)."""
    if rate <= 0:
        return frame_tokens
    noise = torch.rand(frame_tokens.shape, generator=generator).to(frame_tokens.device)
    random_codes = torch.randint(0, codebook_size, frame_tokens.shape,
                                 generator=generator).to(frame_tokens.device)
    return torch.where(noise < rate, random_codes, frame_tokens)


def sample_predicted_frames(output: TranslatorOutput, num_frames: int,
                            generator: torch.Generator | None = None,
                            greedy: bool = False) -> torch.Tensor:
    """The frames a teacher-forced pass would have produced itself: codes (B,T,S) drawn
    at temperature 1 (or the most likely ones, ``greedy``) from the logits of positions
    0..T-1 (position t predicts frame t), digit by digit with ``output.levels`` (as
    inference picks them)."""
    logits = output.code_logits[:, :num_frames].detach().float()  # (B,T,S,K)
    b, t, s, k = logits.shape
    picks = _choose(logits.reshape(b * t, s, k), greedy, 1.0, 0, 1.0, generator, output.levels)
    codes = picks[0] if output.levels is None else digits_to_codes(
        torch.stack(picks, dim=-1), output.levels)
    return codes.view(b, t, s)


def mix_frames(frame_tokens: torch.Tensor, predicted: torch.Tensor, rate: float,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Scheduled sampling: each input frame (B,T,S) is replaced as a whole by the model's
    own prediction ``predicted`` (B,T,S) with probability ``rate``, so that the decoder
    learns to continue from frames like those it makes at inference, not only from true
    ones (free-running decoding drifts away from the text otherwise)."""
    if rate <= 0:
        return frame_tokens
    if predicted.shape != frame_tokens.shape:
        raise InvalidInputError(f"predicted frames {tuple(predicted.shape)} must match the "
                                f"input frames {tuple(frame_tokens.shape)}")
    pick = torch.rand(frame_tokens.shape[:2], generator=generator) < rate
    return torch.where(pick.to(frame_tokens.device)[..., None], predicted, frame_tokens)
