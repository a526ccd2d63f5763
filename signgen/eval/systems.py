"""Systems the suite scores: the ground truth, the lookup + concatenation baseline, and
signgen's stage I video model on ground-truth conditions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from signgen.data.synthsign.dataset import read_npz
from signgen.eval.score import GroundTruth, SystemOutput
from signgen.loading import load_pretrained


class GroundTruthSystem:
    """The SynthSign videos and keypoints themselves: the upper bound."""

    name = "ground_truth"

    def generate(self, gt: GroundTruth) -> SystemOutput:
        return SystemOutput(video=gt.video, keypoints=gt.keypoints, visible=gt.visible,
                            frame_aligned=True)


class VAEReconstructionSystem:
    """The ground-truth video encoded and decoded by the video model's VAE: the ceiling
    of any stage-I video through that latent space (what the VAE alone loses)."""

    name = "vae_reconstruction"

    def __init__(self, pipeline_dir: str | Path) -> None:
        """``pipeline_dir``: an AutoencoderKL folder, or a pipeline folder with ``vae/``."""
        from diffusers import AutoencoderKL

        from signgen.errors import SignGenError

        folder = Path(pipeline_dir)
        if not (folder / "config.json").is_file():  # a pipeline: its VAE
            folder = folder / "vae"
        if not (folder / "config.json").is_file():
            raise SignGenError(f"no VAE in {pipeline_dir}; pass --model a VAE folder or a "
                               f"SignVideoPipeline or SignGenPipeline folder")
        self.vae = load_pretrained(AutoencoderKL, folder).float().eval()
        self.info = {"model": str(pipeline_dir)}

    def generate(self, gt: GroundTruth) -> SystemOutput:
        from signgen.training.tasks.vae import reconstruct

        return SystemOutput(video=reconstruct(self.vae, np.asarray(gt.video)),
                            frame_aligned=True)


class LookupConcatSystem:
    """spoken-to-signed's gloss lookup + concatenation on the isolated-sign export.

    It produces keypoints (no face, no hand meshes). With a ``renderer`` (a
    ``VideoModelSystem``), they are also drawn as pose maps and rendered to video of the
    sample's signer by the stage I model, skeleton only (the only condition this peer
    system yields), so the video metrics apply to it too."""

    name = "lookup_concat"

    def __init__(self, lexicon_dir: str | Path, renderer: VideoModelSystem | None = None,
                 size: tuple[int, int] = (128, 128)) -> None:
        from signgen.eval.lookup_baseline import LookupConcatBaseline

        self.baseline = LookupConcatBaseline(lexicon_dir)
        self.renderer, self.size = renderer, size
        if renderer is not None:  # a separate row: its video costs more, so fewer samples
            self.name = "lookup_concat_rendered"
            self.info = {"renderer": renderer.info}

    def generate(self, gt: GroundTruth) -> SystemOutput:
        keypoints, visible = self.baseline.keypoints(gt.sample["glosses"], gt.sample["language"])
        video = None
        if self.renderer is not None:
            from signgen.data.synthsign.conditions import draw_pose_map

            pose_maps = draw_pose_map(keypoints, visible, *self.size)
            video = self.renderer.render(gt.sample["signer_id"], pose_maps)
        return SystemOutput(video=video, keypoints=keypoints, visible=visible)


class VideoModelSystem:
    """Stage I on ground-truth conditions: the sample's own pose maps (and hand renders)
    and its signer's reference image -> a frame-aligned video from ``SignVideoPipeline``.

    ``conditions`` selects which conditions the model sees (the others are masked off, as
    in condition dropout): the ``stage1_skeleton_only`` ablation passes only the pose map.
    The seed is fixed per sample (``seed`` + sample index in the manifest order of calls),
    so a rerun renders the same videos."""

    def __init__(self, pipeline_dir: str | Path, root: str | Path, name: str,
                 conditions: tuple[str, ...] = ("pose_map", "hand_render"),
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 seed: int = 0, window: int | None = None, overlap: int | None = None,
                 window_batch: int | None = None, precision: str | None = None) -> None:
        from signgen.errors import SignGenError
        from signgen.pipelines.sign_video import SignVideoPipeline

        folder = Path(pipeline_dir)
        if not (folder / "model_index.json").is_file():
            raise SignGenError(f"no video model in {folder}; train one with "
                               f"python train.py --stage video (or pass --model)")
        self.pipe = load_pretrained(SignVideoPipeline, folder)
        self.pipe.set_progress_bar_config(disable=True)
        self.sampling = sampling_settings(folder, num_inference_steps=num_inference_steps,
                                          guidance_scale=guidance_scale, window=window,
                                          overlap=overlap, window_batch=window_batch,
                                          precision=precision)
        self.root, self.name, self.conditions = Path(root), name, tuple(conditions)
        self.seed, self.calls = seed, 0
        self.info = {"model": str(folder), **self.sampling,
                     "conditions": list(self.conditions),
                     "scheduler": type(self.pipe.scheduler).__name__, "seed": seed}

    def render(self, signer_id: str, pose_maps, hand_renders=None):
        """(T,H,W,3) uint8 video of ``signer_id`` (its reference image) following the
        given condition maps (hand renders None: skeleton only); seeded per call."""
        import torch
        from PIL import Image

        reference = Image.open(self.root / "references" / f"{signer_id}.png").convert("RGB")
        generator = torch.Generator().manual_seed(self.seed + self.calls)
        self.calls += 1
        return self.pipe(reference, pose_maps, hand_renders, **self.sampling,
                         generator=generator, progress=False).frames

    def generate(self, gt: GroundTruth) -> SystemOutput:

        folder = self.root / "samples" / gt.sample["sample_id"]
        with read_npz(folder / "conditions.npz") as c:
            maps = {k: c[k] if k in self.conditions else None
                    for k in ("pose_map", "hand_render")}
        frames = self.render(gt.sample["signer_id"], maps["pose_map"], maps["hand_render"])
        return SystemOutput(video=frames, frame_aligned=True)


class TextToSignSystem:
    """The whole engine: the sample's text (and language) -> tokens -> SMPL-X pose and
    keypoints -> video of the sample's signer (its reference image), by
    ``SignGenPipeline``. Not frame-aligned (the translator chooses the length).
    ``avatar_only``: no video, only the decoded pose (keypoints of the SMPL-X avatar),
    the ``text2avatar`` system. ``tell_signer``: pass the sample's signer id (a translator
    with signer conditioning signs in that signer's way; False: as for an unknown signer).

    ``timings`` sums the pipeline's seconds per stage over every call, plus the avatar
    rendering when ``render_avatar``; ``frames`` counts the frames produced."""

    def __init__(self, pipeline_dir: str | Path, root: str | Path, name: str = "text2video",
                 num_inference_steps: int | None = None, guidance_scale: float | None = None,
                 window: int | None = None, overlap: int | None = None, seed: int = 0,
                 render_avatar: bool = False, window_batch: int | None = None,
                 precision: str | None = None, avatar_only: bool = False,
                 decoding: dict | None = None, tell_signer: bool = True) -> None:
        from signgen.pipelines.sign_gen import SignGenPipeline

        folder = Path(pipeline_dir)
        self.pipe = SignGenPipeline.from_pretrained(folder)
        self.pipe.set_progress_bar_config(disable=True)
        self.sampling = sampling_settings(folder, num_inference_steps=num_inference_steps,
                                          guidance_scale=guidance_scale, window=window,
                                          overlap=overlap, window_batch=window_batch,
                                          precision=precision)
        self.root, self.name, self.seed, self.calls = Path(root), name, seed, 0
        self.avatar_only, self.tell_signer = avatar_only, tell_signer
        # The translator's decoding (greedy, temperature, top_k, top_p): the pipeline's
        # defaults unless given (``translator.decoding`` of the config).
        self.decoding = dict(decoding or {})
        self.body = None
        if render_avatar:
            from signgen.body.model import BodyModel

            self.body = BodyModel().eval()
        self.timings: dict[str, float] = {}
        self.frames = 0
        self.info = {"model": str(folder), **self.sampling,
                     "scheduler": type(self.pipe.scheduler).__name__, "seed": seed,
                     "avatar_only": avatar_only, "decoding": self.decoding,
                     "tell_signer": tell_signer,
                     "stage_commands": stage_commands(folder)}

    def generate(self, gt: GroundTruth) -> SystemOutput:
        import time

        from PIL import Image

        sample = gt.sample
        reference = None
        if not self.avatar_only:
            with Image.open(self.root / "references" / f"{sample['signer_id']}.png") as image:
                reference = image.convert("RGB")
        # The sample's signer: the video's reference image, and whom a translator with
        # signer conditioning signs for (the avatar path too: the same person's signing).
        out = self.pipe(sample["text"], sample["language"], reference_image=reference,
                        avatar_only=self.avatar_only, seed=self.seed + self.calls,
                        signer=sample["signer_id"] if self.tell_signer else None,
                        **self.sampling, **self.decoding,
                        progress=False)
        self.calls += 1
        timings = dict(out.timings)
        if self.body is not None:
            from signgen.render.avatar import pose_body, render_avatar

            start = time.perf_counter()
            vertices, _ = pose_body(self.body, out.smplx_pose)
            render_avatar(self.body, vertices, *self.pipe.frame_size)
            timings["render_avatar"] = time.perf_counter() - start
        for stage, seconds in timings.items():
            self.timings[stage] = self.timings.get(stage, 0.0) + seconds
        self.frames += len(out.smplx_pose)
        return SystemOutput(video=out.frames, keypoints=out.keypoints, visible=out.visible)


def stage_commands(folder: Path) -> dict[str, str]:
    """How each stage of an assembled pipeline was made (its ``demo.json``: the command
    of every stage), so that a score of a trial pipeline records its recipe; {} if the
    folder has no ``demo.json``."""
    from signgen.pipelines.assemble import DEMO_FILE

    path = Path(folder) / DEMO_FILE
    if not path.is_file():
        return {}
    stages = json.loads(path.read_text()).get("stages", {})
    return {name: stage.get("command") for name, stage in stages.items()}


class RegressionTranslatorSystem:
    """Issue #7's continuous-regression baseline (``regression_translator``): the sample's
    text (and language) -> ``RegressionTranslator`` SMPL-X poses (T,165) -> ``BodyModel``
    joints (mean shape: the text says nothing of the signer) -> keypoints (T,133,2) px
    through SynthSign's signing camera, as the corpus's own keypoints are made. No video;
    not frame-aligned (the counter chooses the length)."""

    name = "regression_translator"

    def __init__(self, model_dir: str | Path, size: tuple[int, int] = (128, 128)) -> None:
        from signgen.body.model import BodyModel
        from signgen.data.synthsign.signers import signing_camera
        from signgen.data.text_tokenizer import TextTokenizer
        from signgen.errors import SignGenError
        from signgen.models.regression_translator import RegressionTranslator

        folder = Path(model_dir)
        if not (folder / "config.json").is_file():
            raise SignGenError(f"no regression translator in {folder}; train one with "
                               f"python train.py --stage regression_translator (or pass "
                               f"--model)")
        self.model = load_pretrained(RegressionTranslator, folder).eval()
        self.tokenizer = TextTokenizer.load(folder)
        self.body = BodyModel().eval()
        self.camera = signing_camera(size[1], size[0])
        self.frames = 0
        self.info = {"model": str(folder), "size": list(size)}

    def poses(self, text: str, language: str) -> np.ndarray:
        """Text in ``language`` -> (T,165) float32 axis-angle poses (greedy, deterministic)."""
        import torch

        from signgen.errors import InvalidInputError

        encoded = self.tokenizer.encode(text, language)
        limit = self.model.config.max_text_length
        if len(encoded.ids) > limit:
            raise InvalidInputError(f"the sentence is {len(encoded.ids)} tokens long; this "
                                    f"model reads at most {limit}: split it into sentences")
        ids = torch.tensor([encoded.ids])
        return self.model.generate(ids, torch.ones_like(ids, dtype=torch.bool))[0].numpy()

    def generate(self, gt: GroundTruth) -> SystemOutput:
        from signgen.data.synthsign.conditions import project_keypoints
        from signgen.render.avatar import pose_body

        poses = self.poses(gt.sample["text"], gt.sample["language"])
        self.frames += len(poses)
        _, joints = pose_body(self.body, poses)
        keypoints, visible = project_keypoints(joints, self.camera)
        return SystemOutput(keypoints=keypoints, visible=visible)


def sampling_defaults(folder: Path) -> dict:
    """The ``sampling`` block a video model was exported with: ``video.json`` of a stage-I
    folder; for an assembled pipeline, the settings ``stages.json`` records (those it was
    assembled with, else its copy of the video model's); {} if none."""
    import json

    folder = Path(folder)
    if (folder / "video.json").is_file():
        return json.loads((folder / "video.json").read_text()).get("sampling", {})
    if (folder / "stages.json").is_file():
        stages = json.loads((folder / "stages.json").read_text())
        if stages.get("sampling"):
            return stages["sampling"]
        return (stages.get("video_json") or {}).get("sampling", {})
    return {}


SAMPLING_DEFAULTS = {"num_inference_steps": 20, "guidance_scale": 1.0, "window": 8,
                     "overlap": 2, "window_batch": 1, "precision": "fp32"}


def sampling_settings(folder: Path, **given) -> dict:
    """Sampling keyword arguments for a pipeline call: each of ``given`` (the keys of
    SAMPLING_DEFAULTS) that is not None, else the model's exported setting, else the
    default. ``window_batch`` 0 (all windows at once) is passed as None."""
    exported = sampling_defaults(folder)
    settings = {key: given[key] if given.get(key) is not None else exported.get(key, default)
                for key, default in SAMPLING_DEFAULTS.items() if key in given}
    if "window_batch" in settings:
        settings["window_batch"] = settings["window_batch"] or None
    return settings


class DecodedEmbeddingSystem(VideoModelSystem):
    """Stage II round trip (``stage2_decoded``): the sample's own conditions -> stage-I
    condition embedding -> FSQ tokens -> decoded embedding -> the video model; the FSQ
    pose head gives the keypoints and the SMPL-X pose. Frame-aligned. An FSQ that reads
    the pose too (``pose_input``) gets the sample's true SMPL-X poses, as in tokenising.

    ``token_stats()`` adds what the stage-II targets are stated in: ``codebook_usage``
    (0-1), ``consecutive_repeat_rate``, ``smplx_joint_error_mm`` (body + hand joints and
    fingertips against the sample's true pose, with its betas and expression).

    ``avatar_only`` (the ``stage2_avatar`` system): no video, only the FSQ pose head's
    keypoints, as ``text2avatar`` scores the translator's: the ceiling a perfect
    translator would reach through this FSQ autoencoder.

    ``pose_decoder``: a token pose decoder folder (``TokenPoseDecoder``, trained on this
    FSQ's tokens): the pose and keypoints are its reading of the tokens instead."""

    def __init__(self, pipeline_dir: str | Path, fsq_dir: str | Path, root: str | Path,
                 name: str = "stage2_decoded", avatar_only: bool = False,
                 pose_decoder: str | Path | None = None, **kwargs) -> None:
        import torch

        from signgen.body.model import BodyModel
        from signgen.models.fsq_autoencoder import FSQAutoencoder
        from signgen.models.token_pose_decoder import TokenPoseDecoder

        super().__init__(pipeline_dir, root, name, **kwargs)
        self.fsq = load_pretrained(FSQAutoencoder, fsq_dir).eval()
        self.pose_decoder = None if pose_decoder is None else \
            load_pretrained(TokenPoseDecoder, pose_decoder, dtype=torch.float32).eval()
        self.body = BodyModel().eval()
        self.info["fsq_model"] = str(fsq_dir)
        self.info["pose_decoder"] = None if pose_decoder is None else str(pose_decoder)
        self.info["avatar_only"] = self.avatar_only = avatar_only
        self.indices, self.repeats, self.pairs, self.joint_errors = [], 0, 0, []

    def generate(self, gt: GroundTruth) -> SystemOutput:
        import torch
        from PIL import Image

        from signgen.data.synthsign.conditions import inside_frame
        from signgen.models.fsq_autoencoder import keypoints_to_pixels

        folder = self.root / "samples" / gt.sample["sample_id"]
        with read_npz(folder / "conditions.npz") as c, read_npz(folder / "motion.npz") as m:
            pose_map, hand_render = c["pose_map"], c["hand_render"]
            motion = {k: torch.as_tensor(m[k]).float() for k in ("poses", "betas",
                                                                  "expression", "transl")}
        with torch.no_grad():
            embedding = self.pipe.encode_conditions(pose_map, hand_render)
            pose = motion["poses"] if self.fsq.config.pose_input else None
            out = self.fsq(embedding, num_frames=len(embedding), smplx_pose=pose)
            read = out if self.pose_decoder is None else \
                self.pose_decoder(out.indices, num_frames=len(out.indices))
        self._count(out.indices, read.smplx_pose, motion)
        keypoints = keypoints_to_pixels(read.keypoints, *pose_map.shape[1:3]).numpy()
        visible = inside_frame(keypoints, *pose_map.shape[1:3])
        if self.avatar_only:
            return SystemOutput(keypoints=keypoints, visible=visible, frame_aligned=True)
        reference = Image.open(self.root / "references" / f"{gt.sample['signer_id']}.png")
        generator = torch.Generator().manual_seed(self.seed + self.calls)
        self.calls += 1
        frames = self.pipe(reference.convert("RGB"), condition_embeddings=out.embedding,
                           **self.sampling, generator=generator, progress=False).frames
        return SystemOutput(video=frames, keypoints=keypoints, visible=visible,
                            frame_aligned=True)

    def _count(self, indices, smplx_pose, motion: dict) -> None:
        import torch

        from signgen.body.model import SMPLXParams
        from signgen.training.tasks.fsq import joint_error_indices

        self.indices.append(indices.flatten())
        self.repeats += int((indices[1:] == indices[:-1]).all(dim=1).sum())
        self.pairs += len(indices) - 1
        joints = list(joint_error_indices())
        with torch.no_grad():
            predicted, true = (self.body(SMPLXParams.from_full_pose(
                pose, motion["betas"], motion["expression"], motion["transl"])).joints[:, joints]
                for pose in (smplx_pose, motion["poses"]))
        self.joint_errors.append(1000 * (predicted - true).norm(dim=-1).mean().item())

    def token_stats(self) -> dict[str, float]:
        import torch

        counts = torch.bincount(torch.cat(self.indices), minlength=self.fsq.codebook_size)
        return {"codebook_usage": (counts > 0).sum().item() / self.fsq.codebook_size,
                "consecutive_repeat_rate": self.repeats / max(self.pairs, 1),
                "smplx_joint_error_mm": float(np.mean(self.joint_errors))}
