"""Text -> sign language: the whole engine as one diffusers pipeline.

    text (+ sign-language tag, or glosses)
      ── TextTokenizer ──► ids ── SignTranslator.generate ──► tokens (T,S)
      ── FSQAutoencoder.decode ──► condition embeddings (T,E,h,w), SMPL-X pose (T,165),
                                   keypoints (T,133,2)
         (with a ``pose_decoder`` (``TokenPoseDecoder``), the pose and keypoints are its
          reading of the tokens, each frame with its neighbours, not the FSQ head's)
      ── SignVideoPipeline (reference image) ──► frames (T,H,W,3)

A translator trained with canonical handedness (``translator.canonical_handedness``)
signs right-handed for every signer; for a signer it learnt as a mirror image
(``SignTranslator.mirrors``) the pose and keypoints are mirrored back
(:mod:`signgen.body.mirror`), and the video model renders the mirrored reference image
with the tokens' embeddings and the frames are flipped back.

Components (one sub-folder each, ``model_index.json`` as diffusers writes it):
``translator``, ``fsq``, ``vae``, ``unet``, ``condition_encoder``, ``reference_encoder``,
``scheduler``, optionally ``condition_adapter`` and ``pose_decoder``; the text
tokenizer lives in ``text_tokenizer/`` beside them (it is not a torch module, so this
class saves and loads it itself). The avatar is rendered from the returned SMPL-X pose
by the caller (``sample.py``), which owns the body model.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from diffusers import DiffusionPipeline
from diffusers.utils import BaseOutput

# diffusers' from_pretrained loads a component only from a module already imported.
import signgen.models.fsq_autoencoder  # noqa: F401
import signgen.models.token_pose_decoder  # noqa: F401
import signgen.models.translator  # noqa: F401
import signgen.pipelines.sign_video  # noqa: F401
from signgen.data.synthsign.conditions import inside_frame
from signgen.errors import InvalidInputError

TOKENIZER_FOLDER = "text_tokenizer"
SIGNERS_FOLDER = "signers"  # reference images shipped with a pipeline folder: <id>.png
# A pipeline folder's layout version, in ``signgen_pipeline.json``; raised when a change
# makes older folders unreadable (they are then refused with a clear message).
FORMAT_FILE = "signgen_pipeline.json"
FORMAT_VERSION = 1


@dataclass
class AvatarChunk:
    """Consecutive frames of :meth:`SignGenPipeline.stream_avatar`: tokens (n,S) int64,
    smplx_pose (n,165) float32, keypoints (n,133,2) float32 pixels, visible (n,133) bool
    (as in :class:`SignGenOutput`)."""

    tokens: np.ndarray
    smplx_pose: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray


@dataclass
class SignGenOutput(BaseOutput):
    """frames: (T,H,W,3) uint8, or None for ``avatar_only``; smplx_pose: (T,165) float32
    axis-angle (SMPL-X order); keypoints: (T,133,2) float32 COCO-WholeBody pixels of the
    frame size; visible: (T,133) bool, the keypoints inside the frame (SynthSign's
    visibility rule: points outside are meaningless); tokens: (T,S) int64; embeddings:
    (T,E,h,w) float32 (None for ``avatar_only``: not decoded); notices: what the user
    should know (words fingerspelled, characters left out); timings: seconds per stage;
    mirrored: True if the tokens and embeddings are those of the mirror image (a signer
    the translator learnt mirrored: pose, keypoints and frames are mirrored back)."""

    frames: np.ndarray | None
    smplx_pose: np.ndarray
    keypoints: np.ndarray
    visible: np.ndarray
    tokens: np.ndarray
    embeddings: torch.Tensor | None
    notices: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    mirrored: bool = False


def _check_format(folder: Path) -> None:
    """Refuses a pipeline folder written in another layout version."""
    import json

    from signgen.errors import ModelLoadError

    try:
        found = json.loads((folder / FORMAT_FILE).read_text()).get("format")
    except (OSError, ValueError, AttributeError):
        found = None
    if found != FORMAT_VERSION:
        raise ModelLoadError(
            f"{folder} was written by an incompatible signgen version (pipeline format "
            f"{found if found is not None else 'unknown'}, this version reads "
            f"{FORMAT_VERSION}); re-assemble it with python -m signgen.pipelines.assemble")


class SignGenPipeline(DiffusionPipeline):
    """Text (or glosses) in a sign language -> signing video + SMPL-X pose."""

    model_cpu_offload_seq = ("translator->fsq->pose_decoder->reference_encoder->"
                             "condition_adapter->unet->vae")
    _optional_components = ["condition_adapter", "pose_decoder"]

    def __init__(self, translator, fsq, vae, unet, condition_encoder, reference_encoder,
                 scheduler, text_tokenizer, condition_adapter=None, pose_decoder=None) -> None:
        super().__init__()
        self.register_modules(translator=translator, fsq=fsq, vae=vae, unet=unet,
                              condition_encoder=condition_encoder,
                              reference_encoder=reference_encoder, scheduler=scheduler,
                              condition_adapter=condition_adapter, pose_decoder=pose_decoder)
        self.text_tokenizer = text_tokenizer
        t, q = translator.config, fsq
        if (t.codebook_size, t.tokens_per_frame) != (q.codebook_size, q.tokens_per_frame):
            raise InvalidInputError(
                f"the translator emits {t.tokens_per_frame} tokens of {t.codebook_size} codes "
                f"per frame, the FSQ autoencoder reads {q.tokens_per_frame} of "
                f"{q.codebook_size}: they were not trained together")
        p = pose_decoder
        if p is not None and (list(p.config.levels) != list(q.config.levels)
                              or p.tokens_per_frame != q.tokens_per_frame):
            raise InvalidInputError(
                f"the pose decoder reads {p.tokens_per_frame} tokens of levels "
                f"{list(p.config.levels)} per frame, the FSQ autoencoder writes "
                f"{q.tokens_per_frame} of {list(q.config.levels)}: not the same token space")
        if fsq.config.embedding_channels != condition_encoder.config.embedding_channels:
            raise InvalidInputError("the FSQ autoencoder's embedding channels differ from the "
                                    "condition encoder's")
        if text_tokenizer.vocab_size != t.vocab_size:
            raise InvalidInputError(f"the tokenizer has {text_tokenizer.vocab_size} ids, the "
                                    f"translator {t.vocab_size}")

    # -- save / load: the tokenizer beside the diffusers components ----------------------
    def save_pretrained(self, save_directory, **kwargs) -> None:
        import json

        from signgen import __version__

        super().save_pretrained(save_directory, **kwargs)
        self.text_tokenizer.save(Path(save_directory) / TOKENIZER_FOLDER)
        (Path(save_directory) / FORMAT_FILE).write_text(json.dumps(
            {"format": FORMAT_VERSION, "signgen_version": __version__}, indent=1) + "\n")

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs):
        from signgen.data.text_tokenizer import TextTokenizer
        from signgen.loading import model_load_errors

        folder = Path(pretrained_model_name_or_path)
        if not (folder / "model_index.json").is_file():
            raise InvalidInputError(f"{folder} is not a signgen pipeline folder (no "
                                    f"model_index.json)")
        _check_format(folder)
        kwargs.setdefault("use_safetensors", True)  # never a pickled .bin fallback
        # Weights may be stored in half precision (assemble --storage-dtype); compute in fp32.
        kwargs.setdefault("dtype", torch.float32)
        with model_load_errors(cls.__name__, folder):
            kwargs.setdefault("text_tokenizer", TextTokenizer.load(folder / TOKENIZER_FOLDER))
            return super().from_pretrained(folder, **kwargs)

    # -- parts ---------------------------------------------------------------------------
    @property
    def languages(self) -> list[str]:
        return list(self.text_tokenizer.languages)

    @property
    def frame_size(self) -> tuple[int, int]:
        """(H, W) of the frames: the FSQ embedding size times the condition encoder's
        downsampling (equal to the VAE's)."""
        h, w = self.fsq.config.embedding_size
        factor = self.condition_encoder.downsample_factor
        return h * factor, w * factor

    @property
    def pose_context(self) -> bool:
        """Whether a frame's pose is read with its neighbours' tokens (an FSQ with
        temporal context, or a pose decoder with frame blocks): then a sequence's pose
        must be decoded whole, not in chunks."""
        p = self.pose_decoder
        return self.fsq.config.temporal_kernel > 1 or (
            p is not None and (p.config.fsq_temporal_kernel > 1 or (
                p.config.temporal_layers > 0 and p.config.temporal_kernel > 1)))

    def video_pipeline(self):
        """The stage-I pipeline on the same (shared, not copied) modules."""
        from signgen.pipelines.sign_video import SignVideoPipeline

        pipe = SignVideoPipeline(vae=self.vae, unet=self.unet,
                                 condition_encoder=self.condition_encoder,
                                 reference_encoder=self.reference_encoder,
                                 scheduler=self.scheduler,
                                 condition_adapter=self.condition_adapter)
        pipe.set_progress_bar_config(**getattr(self, "_progress_bar_config", {}))
        return pipe

    def _text_ids(self, text: str | None, language: str | None,
                  glosses) -> tuple[torch.Tensor, list[str]]:
        """Text or glosses -> token ids (1,L) and the tokenizer's notices."""
        language = language or self.languages[0]
        if (text is None) == (glosses is None):
            raise InvalidInputError("give either text or glosses")
        encoded = (self.text_tokenizer.encode(text, language) if glosses is None
                   else self.text_tokenizer.encode_glosses(glosses, language))
        limit = self.translator.config.max_text_length
        if len(encoded.ids) > limit:
            raise InvalidInputError(f"the sentence is {len(encoded.ids)} tokens long; this "
                                    f"model reads at most {limit}: split it into sentences")
        return torch.tensor([encoded.ids], device=self.device), encoded.notices

    def _signer_ids(self, signer: str | None, notices: list[str]) -> torch.Tensor | None:
        """The translator's (1,) signer index of ``signer`` (None without signer
        conditioning); a signer it was not trained on signs as "unknown", with a notice."""
        if self.translator.config.signers is None:
            return None
        index = self.translator.signer_index(signer)
        if signer is not None and index == 0:
            notices.append(f"signer {signer!r} is not one the translator learnt: signing "
                           f"for an unknown signer")
        return torch.tensor([index], device=self.device)

    @torch.no_grad()
    def translate(self, text: str | None = None, language: str | None = None,
                  glosses=None, *, greedy: bool = False, temperature: float = 1.0,
                  top_k: int = 0, top_p: float = 1.0, max_frames: int | None = None,
                  candidates: int = 1, generator: torch.Generator | None = None,
                  signer: str | None = None) -> tuple[np.ndarray, list[str]]:
        """Text or glosses -> tokens (T,S) int64 and the tokenizer's notices.

        ``candidates`` > 1 draws that many token sequences in one batch and keeps the one
        whose decoded pose is closest to the others' (minimum-Bayes-risk choice, see
        :mod:`signgen.pipelines.candidate_selection`); 1 keeps the single draw.
        ``signer``: the id of the signer the signing is for; a translator with signer
        conditioning signs in that signer's way (handedness, speed, signing space)."""
        ids, notices = self._text_ids(text, language, glosses)
        signer_ids = self._signer_ids(signer, notices)
        return self._tokens(ids, dict(max_frames=max_frames, greedy=greedy,
                                      temperature=temperature, top_k=top_k, top_p=top_p,
                                      generator=generator, signer_ids=signer_ids),
                            candidates), notices

    def _tokens(self, ids: torch.Tensor, decoding: dict, candidates: int = 1) -> np.ndarray:
        """(1,L) ids -> the chosen token sequence (T,S) int64 (see :meth:`translate`)."""
        from signgen.pipelines.candidate_selection import select_medoid

        if candidates < 1:
            raise InvalidInputError(f"candidates must be >= 1, got {candidates}")
        if decoding.get("greedy"):
            candidates = 1  # greedy draws are all the same sequence
        ids = ids.expand(candidates, -1)
        if decoding.get("signer_ids") is not None:
            decoding = {**decoding, "signer_ids": decoding["signer_ids"].expand(candidates)}
        drawn = self.translator.generate(ids, torch.ones_like(ids, dtype=torch.bool),
                                         **decoding)
        if candidates == 1:
            return drawn[0].numpy()
        keypoints = self._candidate_keypoints(drawn)
        visible = [inside_frame(k, *self.frame_size) for k in keypoints]
        chosen, _ = select_medoid(keypoints, visible)
        return drawn[chosen].numpy()

    @torch.no_grad()
    def _candidate_keypoints(self, drawn: list[torch.Tensor]) -> list[np.ndarray]:
        """Token sequences (T_i,S) -> their keypoints (T_i,133,2) in pixels, each as
        :meth:`decode_tokens` gives it alone, in one call where that reads the same:
        frames that decode alone concatenated; with a pose decoder that reads the
        neighbours, the sequences one after the other with their ``lengths``; an FSQ with
        temporal context (no pose decoder), one sequence at a time."""
        from signgen.models.fsq_autoencoder import keypoints_to_pixels

        bounds = np.cumsum([len(t) for t in drawn[:-1]])
        if not self.pose_context:  # frames decode alone: all in one call
            keypoints = self.decode_tokens(torch.cat(drawn).numpy(), embeddings=False)[2]
            return np.split(keypoints, bounds)
        lengths = [len(t) for t in drawn]
        if self.pose_decoder is None or min(lengths) < 1:
            return [self.decode_tokens(t.numpy(), embeddings=False)[2] for t in drawn]
        out = self.pose_decoder(torch.cat(drawn).to(self.device), lengths=lengths, pose=False)
        keypoints = keypoints_to_pixels(out.keypoints.float(), *self.frame_size)
        return np.split(keypoints.cpu().numpy(), bounds)

    def stream_avatar(self, text: str | None = None, language: str | None = None,
                      glosses=None, *, seed: int = 0, greedy: bool = False,
                      temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                      max_frames: int | None = None, candidates: int = 1,
                      chunk_frames: int = 16, signer: str | None = None
                      ) -> tuple[list[str], Iterator[AvatarChunk]]:
        """The avatar path of ``__call__(..., avatar_only=True)`` as the translator goes:
        returns the tokenizer's notices (bad input raises here) and an iterator of
        :class:`AvatarChunk` of up to ``chunk_frames`` frames, each decoded as soon as the
        translator has made it, so that a caller can render and encode chunk k while
        chunk k+1 is translated. The chunks concatenate to ``__call__``'s tokens, pose
        and keypoints for the same arguments. A pose read with temporal context
        (``pose_context``) needs each frame's neighbours: it comes as one chunk at the
        end. With ``candidates`` > 1 the choice needs every candidate whole: the
        chunks come after it."""
        ids, notices = self._text_ids(text, language, glosses)
        if chunk_frames < 1:
            raise InvalidInputError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if candidates < 1:
            raise InvalidInputError(f"candidates must be >= 1, got {candidates}")
        decoding = dict(max_frames=max_frames, greedy=greedy, temperature=temperature,
                        top_k=top_k, top_p=top_p, generator=torch.Generator().manual_seed(seed),
                        signer_ids=self._signer_ids(signer, notices))
        return notices, self._avatar_chunks(ids, chunk_frames, decoding, candidates, signer)

    @torch.no_grad()
    def _avatar_chunks(self, ids: torch.Tensor, chunk_frames: int, decoding: dict,
                       candidates: int, signer: str | None) -> Iterator[AvatarChunk]:
        mask = torch.ones_like(ids, dtype=torch.bool)
        if self.pose_context:
            chunk_frames = self.translator.config.max_frames
        if candidates > 1:
            chosen = torch.from_numpy(self._tokens(ids, decoding, candidates))
            chunks = chosen.split(chunk_frames)
        else:
            chunks = self.translator.stream(ids, mask, chunk_frames, **decoding)
        for tokens in chunks:
            tokens = tokens.numpy()
            _, pose, keypoints = self.decode_tokens(tokens, embeddings=False, signer=signer)
            yield AvatarChunk(tokens=tokens, smplx_pose=pose, keypoints=keypoints,
                              visible=inside_frame(keypoints, *self.frame_size))

    @torch.no_grad()
    def decode_tokens(self, tokens: np.ndarray, embeddings: bool = True,
                      signer: str | None = None
                      ) -> tuple[torch.Tensor | None, np.ndarray, np.ndarray]:
        """tokens (T,S) -> embeddings (T,E,h,w) (None unless ``embeddings``: only the
        video needs them), SMPL-X pose (T,165), keypoints (T,133,2) in pixels of the
        frame size. For a ``signer`` the translator learnt as a mirror image the pose and
        keypoints are mirrored back; the embeddings stay the tokens' own (see
        :meth:`__call__`)."""
        from signgen.body.mirror import mirror_full_pose, mirror_keypoints
        from signgen.models.fsq_autoencoder import keypoints_to_pixels

        indices = torch.as_tensor(np.asarray(tokens), dtype=torch.long, device=self.device)
        embedding = None
        if self.pose_decoder is None or embeddings:
            out = self.fsq.decode(self.fsq.decode_indices(indices), num_frames=len(indices),
                                  embedding=embeddings)
            embedding = None if out.embedding is None else out.embedding.float()
        if self.pose_decoder is not None:  # the pose read with the neighbouring frames
            out = self.pose_decoder(indices, num_frames=len(indices))
        height, width = self.frame_size
        keypoints = keypoints_to_pixels(out.keypoints.float(), height, width)
        pose, keypoints = out.smplx_pose.float().cpu().numpy(), keypoints.cpu().numpy()
        if self.translator.mirrors(signer):
            pose, keypoints = mirror_full_pose(pose), mirror_keypoints(keypoints, width)
        return embedding, pose, keypoints

    # -- the whole engine ----------------------------------------------------------------
    @torch.no_grad()
    def __call__(self, text: str | None = None, language: str | None = None, glosses=None,
                 reference_image=None, *, avatar_only: bool = False, seed: int = 0,
                 num_inference_steps: int = 20, guidance_scale: float = 1.0,
                 window: int = 8, overlap: int = 2, window_batch: int | None = 1,
                 precision: str = "fp32", greedy: bool = False,
                 temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                 max_frames: int | None = None, candidates: int = 1,
                 signer: str | None = None, progress: bool = True) -> SignGenOutput:
        """Sign ``text`` (or ``glosses``) in ``language`` (default: the model's first).

        ``reference_image``: the signer (see ``SignVideoPipeline``), required unless
        ``avatar_only``. ``seed`` seeds token sampling (when not ``greedy``) and the video
        noise, both on the CPU: a seed gives the same output on any device type. Tokens
        are sampled by default (``temperature``, ``top_k``, ``top_p``; ``greedy`` takes
        each slot's most likely code): greedy decoding of a small translator tends to
        repeat one frame (see ``TranslatorDecodingConfig``). ``candidates`` > 1 keeps the
        most typical of that many draws (see :meth:`translate`). ``signer``: the id of
        the signer (of ``reference_image``) the signing is for (see :meth:`translate`).
        """
        if not avatar_only and reference_image is None:
            raise InvalidInputError("a reference image of the signer is needed for the video "
                                    "(or ask for the avatar only)")
        timings = {}
        start = time.perf_counter()
        generator = torch.Generator().manual_seed(seed)
        tokens, notices = self.translate(text, language, glosses, greedy=greedy,
                                         temperature=temperature, top_k=top_k, top_p=top_p,
                                         max_frames=max_frames, candidates=candidates,
                                         generator=generator, signer=signer)
        timings["translate"] = time.perf_counter() - start
        start = time.perf_counter()
        embeddings, smplx_pose, keypoints = self.decode_tokens(tokens, not avatar_only, signer)
        timings["decode_tokens"] = time.perf_counter() - start
        frames = None
        mirrored = self.translator.mirrors(signer)
        if not avatar_only:
            from signgen.pipelines.sign_video import to_image_tensor

            start = time.perf_counter()
            if mirrored:  # the embeddings sign right-handed: render the mirror image
                reference_image = to_image_tensor(reference_image, self.frame_size)[0].flip(-1)
            video = self.video_pipeline()(
                reference_image, condition_embeddings=embeddings,
                num_inference_steps=num_inference_steps, guidance_scale=guidance_scale,
                generator=torch.Generator().manual_seed(seed), window=window, overlap=overlap,
                window_batch=window_batch, precision=precision, progress=progress)
            frames = video.frames[:, :, ::-1].copy() if mirrored else video.frames
            timings["render_video"] = time.perf_counter() - start
        return SignGenOutput(frames=frames, smplx_pose=smplx_pose, keypoints=keypoints,
                             visible=inside_frame(keypoints, *self.frame_size), tokens=tokens,
                             embeddings=None if avatar_only else embeddings.cpu(),
                             notices=notices, timings=timings, mirrored=mirrored)
