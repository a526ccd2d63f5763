"""Text -> sign tokens (stage III): a transformer encoder over text ids and an
autoregressive decoder over frames that predicts all FSQ tokens of a frame in one step.

Decoding follows SignViP / T2M-GPT: frame ``t``'s input is the sum of one embedding per
token slot (slot-specific tables), the decoder attends causally over frames and across to
the text, and one head per slot gives the next frame's ``tokens_per_frame`` codes; a
separate logit says whether the sequence ends after the frames so far. Shapes:

    text_ids      (B,L) int64 in [0, vocab_size), pad_id where ``text_mask`` is False
    frame_tokens  (B,T,S) int64 in [0, codebook_size), S = tokens_per_frame
    code logits   (B,T+1,S,codebook_size): position t predicts frame t+1's codes (t < T)
    end logits    (B,T+1): position t says "the sequence has exactly t frames"

Generation keeps a key/value cache per decoder layer (the text's cross-attention keys
and values are computed once), so each new frame costs one position, not the prefix.
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


@dataclass
class TranslatorOutput(BaseOutput):
    """code_logits (B,T+1,S,C) and end_logits (B,T+1), see the module docstring."""

    code_logits: torch.Tensor
    end_logits: torch.Tensor


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
    """

    @register_to_config
    def __init__(self, vocab_size: int, codebook_size: int = 625, tokens_per_frame: int = 16,
                 dim: int = 256, num_heads: int = 4, encoder_layers: int = 3,
                 decoder_layers: int = 3, ffn_mult: int = 4, dropout: float = 0.1,
                 max_text_length: int = 128, max_frames: int = 256, pad_id: int = 0) -> None:
        super().__init__()
        self._check_sizes(vocab_size, codebook_size, tokens_per_frame, dim, num_heads,
                          encoder_layers, decoder_layers, ffn_mult, max_text_length, max_frames,
                          dim=dim, num_heads=num_heads, vocab_size=vocab_size, pad_id=pad_id)
        self._build_text_encoder(vocab_size, dim, num_heads, encoder_layers, ffn_mult, dropout,
                                 max_text_length, pad_id)
        # One table per slot, stored as one (S*C, D) table indexed by slot*C + code.
        self.code_embed = nn.Embedding(tokens_per_frame * codebook_size, dim)
        self._build_frame_decoder(dim, num_heads, decoder_layers, ffn_mult, dropout, max_frames)
        self.code_head = nn.Linear(dim, tokens_per_frame * codebook_size)
        self.end_head = nn.Linear(dim, 1)
        self.register_buffer("slot_offsets", torch.arange(tokens_per_frame) * codebook_size,
                             persistent=False)

    # -- parts ---------------------------------------------------------------------------
    def embed_frames(self, frame_tokens: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B,T,S) codes -> (B,T,D) decoder inputs of frames at positions offset+1..offset+T
        (position 0 is the start frame)."""
        if frame_tokens.shape[-1] != self.config.tokens_per_frame:
            raise InvalidInputError(f"frames must have {self.config.tokens_per_frame} tokens, "
                                    f"got {frame_tokens.shape[-1]}")
        if frame_tokens.numel() and (frame_tokens.min() < 0
                                     or frame_tokens.max() >= self.config.codebook_size):
            raise InvalidInputError(f"frame tokens must lie in [0, {self.config.codebook_size})")
        x = self.code_embed(frame_tokens + self.slot_offsets).sum(dim=2)
        return x + self.frame_position[offset + 1:offset + 1 + frame_tokens.shape[1]]

    def _decode(self, x: torch.Tensor, text_kv: list, text_attn_mask: torch.Tensor | None,
                caches: list[KVCache] | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """(B,N,D) decoder inputs -> code logits (B,N,S,C) and end logits (B,N)."""
        for i, layer in enumerate(self.decoder):
            x = layer(x, text_kv[i], text_attn_mask, None if caches is None else caches[i])
        x = self.decoder_norm(x)
        b, n, _ = x.shape
        codes = self.code_head(x).view(b, n, self.config.tokens_per_frame,
                                       self.config.codebook_size)
        return codes, self.end_head(x).squeeze(-1)

    @staticmethod
    def _text_attn_mask(text_mask: torch.Tensor) -> torch.Tensor | None:
        """(B,L) bool -> the (B,1,1,L) cross-attention mask, or None when no text is padded."""
        return None if bool(text_mask.all()) else text_mask[:, None, None]

    # -- training --------------------------------------------------------------------------
    def forward(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                frame_tokens: torch.Tensor) -> TranslatorOutput:
        """Teacher forcing: text (B,L) and the target frames (B,T,S) -> logits for every
        position 0..T (see the module docstring)."""
        if frame_tokens.ndim != 3:
            raise InvalidInputError(f"frame_tokens must be (B,T,S), got "
                                    f"{tuple(frame_tokens.shape)}")
        if frame_tokens.shape[1] > self.config.max_frames:
            raise InvalidInputError(f"{frame_tokens.shape[1]} frames exceed max_frames "
                                    f"{self.config.max_frames}")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        start = (self.start_frame + self.frame_position[0]).expand(len(memory), 1, -1)
        x = torch.cat([start, self.embed_frames(frame_tokens)], dim=1)
        codes, end = self._decode(x, text_kv, self._text_attn_mask(text_mask))
        return TranslatorOutput(code_logits=codes, end_logits=end)

    # -- generation ------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, text_ids: torch.Tensor, text_mask: torch.Tensor,
                 max_frames: int | None = None, min_frames: int = 1, greedy: bool = True,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 generator: torch.Generator | None = None) -> list[torch.Tensor]:
        """Decode token frames for each text: a list of B tensors (T_i,S) int64.

        A sequence ends when its end probability exceeds 0.5 (after ``min_frames``
        frames) or at ``max_frames`` (default the model's). ``greedy`` takes each slot's
        most likely code; otherwise codes are sampled at ``temperature`` from the
        ``top_k`` / ``top_p`` filtered distribution with ``generator`` (on the CPU, so a
        seed gives the same tokens on any device type).
        """
        max_frames = self.config.max_frames if max_frames is None else max_frames
        if not 1 <= min_frames <= max_frames <= self.config.max_frames:
            raise InvalidInputError(f"need 1 <= min_frames <= max_frames <= "
                                    f"{self.config.max_frames}, got {min_frames}, {max_frames}")
        if not greedy and (temperature <= 0 or not 0 < top_p <= 1 or top_k < 0):
            raise InvalidInputError("sampling needs temperature > 0, 0 < top_p <= 1, top_k >= 0")
        memory = self.encode_text(text_ids, text_mask)
        text_kv = [layer.text_keys_values(memory) for layer in self.decoder]
        batch = len(memory)
        x = (self.start_frame + self.frame_position[0]).expand(batch, 1, -1)
        text_attn_mask = self._text_attn_mask(text_mask)
        head_dim = self.config.dim // self.config.num_heads
        caches = [KVCache(batch, self.config.num_heads, head_dim, max_frames + 1, like=memory)
                  for _ in self.decoder]
        frames = []
        finished = torch.zeros(batch, dtype=torch.bool)
        lengths = torch.full((batch,), max_frames, dtype=torch.long)
        for t in range(max_frames + 1):
            codes, end = self._decode(x, text_kv, text_attn_mask, caches)
            if t >= min_frames:
                ends = (end[:, -1].float().sigmoid() > 0.5).cpu() & ~finished
                lengths[ends] = t
                finished |= ends
            if finished.all() or t == max_frames:
                break
            logits = codes[:, -1].float()  # (B,S,C)
            if greedy:
                chosen = logits.argmax(-1)
            else:
                logits = _filter_logits(logits / temperature, top_k, top_p)
                probs = logits.softmax(-1).cpu()
                chosen = torch.multinomial(probs.view(-1, probs.shape[-1]), 1,
                                           generator=generator).view(probs.shape[:-1])
                chosen = chosen.to(logits.device)
            frames.append(chosen)
            # chosen codes are in range by construction: index the tables directly.
            x = (self.code_embed(chosen + self.slot_offsets).sum(dim=1)
                 + self.frame_position[t + 1])[:, None]
        if not frames:
            return [torch.zeros(0, self.config.tokens_per_frame, dtype=torch.long)
                    for _ in range(batch)]
        tokens = torch.stack(frames, dim=1).cpu()  # (B,T,S)
        return [tokens[i, :int(lengths[i])] for i in range(batch)]


def translator_loss(output: TranslatorOutput, frame_tokens: torch.Tensor,
                    num_frames: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """Cross-entropy of every real frame's codes (mean over frames and slots) + binary
    cross-entropy of the end decision at every position up to each sequence's end.

    frame_tokens (B,T,S) targets (padding beyond ``num_frames`` (B,) is ignored)."""
    b, t, s = frame_tokens.shape
    positions = torch.arange(t + 1, device=frame_tokens.device)
    real = positions[None, :t] < num_frames[:, None]  # (B,T): positions that predict a frame
    logits = output.code_logits[:, :t]  # position i predicts frame i (0-based target index)
    ce = F.cross_entropy(logits[real].reshape(-1, logits.shape[-1]).float(),
                         frame_tokens[real].reshape(-1))
    upto = positions[None] <= num_frames[:, None]  # (B,T+1)
    end_target = (positions[None] == num_frames[:, None]).float()
    bce = F.binary_cross_entropy_with_logits(output.end_logits[upto].float(), end_target[upto])
    with torch.no_grad():
        accuracy = (logits[real].argmax(-1) == frame_tokens[real]).float().mean()
    return ce + bce, {"code_ce": ce.item(), "end_bce": bce.item(),
                      "code_accuracy": accuracy.item()}


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
