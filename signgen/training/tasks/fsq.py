"""Training task of the FSQ autoencoder (stage II): ``python train.py --stage fsq``.

The frozen condition encoder of a trained stage-I pipeline (``fsq.video_model``) turns
each frame's pose map and hand render into the embedding map the video model is driven
by; the FSQ autoencoder learns to squeeze that map through a few discrete tokens and back
(distillation), and to read the frame's SMPL-X pose and 2D keypoints off the same tokens.

Data: the frame cache of the train split (single frames, or clips of ``fsq.clip_length``
when ``fsq.model.temporal_kernel`` > 1), with each sample's ``motion.npz`` (poses,
betas, expression, transl, keypoints, visible) read once into memory and indexed by the
cache's global frame index (a tiny-config train split: ~90k frames, ~175 MB). With
``fsq.embedding_cache`` the frames' embeddings are computed once, at the training's
precision, into a :class:`~signgen.data.embedding_cache.EmbeddingCache` and read from
it, instead of embedding the batch's pose maps and hand renders at every step.

With ``fsq.model.pose_input`` the encoder also reads each frame's true SMPL-X pose.

Loss (weights in ``fsq.loss``):
- embedding: MSE to the stage-I embedding divided by its frame-to-frame variance (the
  variance over frames of each value, averaged; measured once on ``STATISTICS_FRAMES``
  train frames): scale-free, and 1 = no better than the mean embedding (+ optional
  1 - cosine per frame, of embeddings minus the mean). The same statistics standardise
  the model's input;
- pose: MSE between predicted and true rotation matrices of the 53 posed joints
  (matrices, not axis-angle: no wrap-around at pi);
- joints: mean Euclidean distance (metres) between the ``BodyModel`` joints of the
  predicted pose and of the true pose, both with the sample's betas, expression and
  translation, over body + hand joints + fingertips (``joint_error_indices``);
- keypoints: L1 on frame-normalised coordinates over the visible keypoints.

Evaluation on fixed dev samples (whole samples, each one clip): ``embedding_mse``,
``embedding_nmse`` (MSE / frame variance, as in the loss), ``embedding_cosine`` (centred),
``codebook_usage`` (distinct codes used over all token slots / codebook size),
``perplexity`` (exp of the entropy of the code histogram), ``consecutive_repeat_rate``
(fraction of consecutive frame pairs whose tokens are all equal: the copy-the-input
failure of a translator), ``smplx_joint_error_mm``, ``pose_error_deg`` (mean geodesic
angle) and ``keypoint_error_px``.

Export: ``save_pretrained`` + ``fsq.json`` (the stage-I folder and the hash of its
condition encoder's weights: tokens only mean something with that encoder).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from signgen.body.skeleton import FINGERS, JOINT_NAMES
from signgen.config.schema import SignGenConfig, TrainConfig
from signgen.data.embedding_cache import EmbeddingCache
from signgen.data.synthsign.dataset import images_to_tensor, read_npz
from signgen.errors import ConfigError, SignGenError
from signgen.loading import load_pretrained
from signgen.paths import weights_hash
from signgen.precision import float32, training_precision

DEV_SAMPLES = 8  # evaluation: whole dev samples, evenly spread over the split
STATISTICS_FRAMES = 256  # train frames that give the embedding statistics
# Standardisation floor, relative to the RMS standard deviation: values that hardly
# change between frames (background) are not blown up to unit variance.
SCALE_FLOOR = 0.1
CONDITION_BATCH = 64  # frames per condition-encoder call when preparing evaluation data
MOTION_KEYS = ("poses", "expression", "transl", "keypoints", "visible")


def joint_error_indices() -> tuple[int, ...]:
    """Body (22) and finger (30) skeleton joints plus the 10 fingertips, as indices into
    ``BodyModel``'s 144 output joints: what the avatar's signing is made of (jaw and eyes
    left out)."""
    from signgen.body.model import OUTPUT_JOINT_NAMES

    skeleton = [i for i, name in enumerate(JOINT_NAMES)
                if name not in ("jaw", "left_eye_smplhf", "right_eye_smplhf")]
    tips = [OUTPUT_JOINT_NAMES.index(f"{side}_{finger}")
            for side in ("left", "right") for finger in FINGERS]
    return (*skeleton, *tips)


def video_model_folder(cfg: SignGenConfig) -> Path:
    return Path(cfg.fsq.video_model)


def load_condition_encoder(folder: Path):
    """The frozen condition encoder of the stage-I pipeline in ``folder``, in eval mode.

    Read from the pipeline's ``condition_encoder/`` sub-folder alone: the same weights as
    ``SignVideoPipeline.from_pretrained(folder).condition_encoder`` without loading the
    VAE and UNet (gigabytes at full scale)."""
    from signgen.models.condition_encoder import MultiConditionEncoder

    folder = Path(folder)
    if not (folder / "model_index.json").is_file() or \
            not (folder / "condition_encoder" / "config.json").is_file():
        raise SignGenError(f"no stage-I pipeline in {folder}; train it with python train.py "
                           f"--stage video or point fsq.video_model at one")
    encoder = load_pretrained(MultiConditionEncoder, folder / "condition_encoder")
    return encoder.eval().requires_grad_(False)


def read_motion(path: Path, length: int, num_betas: int, num_expression: int,
                mismatch: str) -> dict[str, np.ndarray]:
    """One sample's ``motion.npz`` at ``path``, ``length`` frames: poses (T,165), betas
    (T,num_betas) (broadcast over frames), expression (T,num_expression), transl (T,3);
    keypoints (T,133,2) pixels; visible (T,133) bool. An array of another length is a
    SignGenError ending with ``mismatch`` (what the length came from and what to do)."""
    with read_npz(path) as motion:
        arrays = {k: np.array(motion[k]) for k in MOTION_KEYS}
        betas = np.array(motion["betas"])
    arrays["betas"] = np.broadcast_to(betas, (length, betas.shape[-1]))
    for key, array in arrays.items():
        if array.shape[0] != length:
            raise SignGenError(f"{path}: {key} has {array.shape[0]} frames, {mismatch}")
    for key, width in (("betas", num_betas), ("expression", num_expression)):
        if arrays[key].shape[1] < width:
            raise ConfigError(f"the dataset has {arrays[key].shape[1]} {key} per frame, "
                              f"body.num_{'betas' if key == 'betas' else 'expression'} "
                              f"asks for {width}")
        arrays[key] = arrays[key][:, :width]
    return arrays


def load_motion(dataset_root: Path, frames, num_betas: int, num_expression: int
                ) -> dict[str, np.ndarray]:
    """Per-frame ground truth of every frame of a frame cache, aligned with its global
    frame index: poses (N,165), betas (N,num_betas), expression (N,num_expression),
    transl (N,3) float32; keypoints (N,133,2) pixels; visible (N,133) bool."""
    n = frames.num_frames
    out: dict[str, np.ndarray] = {}
    for sample in frames.samples:
        path = Path(dataset_root) / "samples" / sample["sample_id"] / "motion.npz"
        start, length = int(sample["offset"]), int(sample["length"])
        arrays = read_motion(path, length, num_betas, num_expression,
                             f"the video {length}; delete the sample's folder and "
                             f"regenerate it")
        for key, array in arrays.items():
            if key not in out:
                out[key] = np.zeros((n, *array.shape[1:]), dtype=array.dtype)
            out[key][start:start + length] = array
    return out


class FSQItems(Dataset):
    """Clips of ``length`` consecutive frames of one sample (1 = single frames).

    Item: pose_map, hand_render (F,3,H,W) float in [0,1] (with ``embeddings``, an
    ``EmbeddingCache`` of the same frames: embedding (F,E,h,w) float instead); poses
    (F,165), betas (F,S), expression (F,X), transl (F,3) float; keypoints (F,133,2)
    normalised to the frame; visible (F,133) bool; sample_id."""

    def __init__(self, frames, motion: dict[str, np.ndarray], length: int = 1,
                 starts: np.ndarray | None = None, embeddings=None) -> None:
        self.frames, self.motion, self.length = frames, motion, length
        self.embeddings = embeddings
        self.starts = np.asarray(frames.clip_starts(length) if starts is None else starts)
        if not len(self.starts):
            raise SignGenError(f"no clip of {length} frames in the frame cache")

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, index: int) -> dict:
        from signgen.models.fsq_autoencoder import pixels_to_keypoints

        start = int(self.starts[index])
        span = slice(start, start + self.length)
        item = {"sample_id": self.frames.samples[self.frames.sample_of_frame(start)]["sample_id"]}
        if self.embeddings is not None:
            item["embedding"] = self.embeddings.read(start, start + self.length)
        else:
            item["pose_map"] = images_to_tensor(self.frames.pose_map[span])
            item["hand_render"] = images_to_tensor(self.frames.hand_render[span])
        for key in ("poses", "betas", "expression", "transl", "visible"):
            item[key] = torch.from_numpy(np.array(self.motion[key][span]))
        pixels = torch.from_numpy(np.array(self.motion["keypoints"][span], dtype=np.float32))
        item["keypoints"] = pixels_to_keypoints(pixels, self.frames.height, self.frames.width)
        return item


def collate(items: list[dict]) -> dict:
    batch = {k: torch.stack([item[k] for item in items]) for k in items[0] if k != "sample_id"}
    batch["sample_ids"] = [item["sample_id"] for item in items]
    return batch


def true_rotations(poses: torch.Tensor) -> torch.Tensor:
    """(N,165) full poses -> (N,53,3,3) rotation matrices of the predicted joints."""
    from signgen.models.fsq_autoencoder import POSE_JOINT_INDICES, axis_angle_to_matrix

    return axis_angle_to_matrix(poses.view(len(poses), -1, 3)[:, list(POSE_JOINT_INDICES)])


class PoseTargets:
    """The avatar-pose loss terms and errors of a pose head's output (an
    ``FSQDecoderOutput``) against a batch's ground truth: what the FSQ autoencoder's
    pose head and the token pose decoder are both trained and judged on.

    A batch is flat (N frames): poses (N,165), betas, expression, transl, keypoints
    (N,133,2) normalised to the frame, visible (N,133) bool."""

    def __init__(self, body_cfg) -> None:
        from signgen.body.joint_model import JointModel
        from signgen.body.model import BodyModel

        self.body = BodyModel(body_cfg.model_dir, body_cfg.gender, body_cfg.num_betas,
                              body_cfg.num_expression).eval().requires_grad_(False)
        self.joint_model = JointModel(self.body).requires_grad_(False)
        self.joint_indices = list(joint_error_indices())

    def joints(self, poses: torch.Tensor, batch: dict) -> torch.Tensor:
        """(N,165) full poses with the batch's betas/expression/transl -> (N,J,3) metres,
        the ``joint_error_indices`` joints: ``BodyModel``'s joints, computed by
        ``JointModel`` (skinning only the vertices they need, not the mesh), in float32
        under any autocast."""
        self.joint_model.to(poses.device)
        shape = torch.cat([batch["betas"], batch["expression"]], dim=-1).float()
        with float32(poses.device):
            joints = self.joint_model(poses.float().reshape(len(poses), -1, 3), shape,
                                      batch["transl"].float())
        return joints[:, self.joint_indices]

    def terms(self, out, batch: dict) -> dict[str, torch.Tensor]:
        """Unweighted terms: ``pose`` (rotation-matrix MSE), ``joints`` (mean joint
        distance, metres), ``keypoints`` (L1 over the visible keypoints)."""
        with torch.no_grad():
            true_joints = batch["joints"] if "joints" in batch \
                else self.joints(batch["poses"], batch)
        visible = batch["visible"].to(out.keypoints.dtype)[..., None]  # (N,133,1)
        return {
            "pose": F.mse_loss(out.rotations, true_rotations(batch["poses"])),
            "joints": (self.joints(out.smplx_pose, batch) - true_joints).norm(dim=-1).mean(),
            "keypoints": ((out.keypoints - batch["keypoints"]).abs() * visible).sum()
            / (2 * visible.sum()).clamp(min=1),
        }

    @torch.no_grad()
    def errors(self, out, item: dict, height: int, width: int) -> dict[str, float]:
        """Sums over the frames of one clip: ``smplx_joint_error_mm`` and
        ``pose_error_deg`` (each frame's mean over joints; geodesic angle), and the
        keypoint pixel distance summed over visible keypoints with their count
        (``keypoint_error_px_sum``, ``keypoint_count``)."""
        from signgen.models.fsq_autoencoder import keypoints_to_pixels

        true_joints = item["joints"] if "joints" in item else self.joints(item["poses"], item)
        joints = self.joints(out.smplx_pose, item)
        cos = ((out.rotations * true_rotations(item["poses"])).sum(dim=(-1, -2)) - 1) / 2
        distance = (keypoints_to_pixels(out.keypoints, height, width)
                    - keypoints_to_pixels(item["keypoints"], height, width)).norm(dim=-1)
        visible = item["visible"]
        return {"smplx_joint_error_mm": 1000 * (joints - true_joints).norm(dim=-1)
                .mean(dim=1).sum().item(),
                "pose_error_deg": torch.rad2deg(torch.acos(cos.clamp(-1, 1))).mean(dim=1)
                .sum().item(),
                "keypoint_error_px_sum": distance[visible].sum().item(),
                "keypoint_count": visible.sum().item()}


def build_fsq_model(settings, condition_encoder, height: int, width: int):
    """A fresh ``FSQAutoencoder`` of ``fsq.model`` settings for the embedding maps that
    ``condition_encoder`` makes of height x width frames."""
    from signgen.models.fsq_autoencoder import FSQAutoencoder

    f = condition_encoder.downsample_factor
    return FSQAutoencoder(
        embedding_channels=condition_encoder.config.embedding_channels,
        embedding_size=(height // f, width // f), hidden_channels=list(settings.hidden_channels),
        levels=list(settings.levels), temporal_kernel=settings.temporal_kernel,
        pose_hidden=settings.pose_hidden, pose_input=settings.pose_input)


def training_device(cfg: SignGenConfig) -> str:
    """Where a training run of ``cfg`` computes: "cpu" or "cuda" (as the loop decides)."""
    device = cfg.experiment.device
    return "cpu" if device == "cpu" or not torch.cuda.is_available() else "cuda"


def cache_precision(cfg: SignGenConfig) -> str:
    """The precision an FSQ training of ``cfg`` computes its embeddings at, as the
    ``EmbeddingCache`` names it: "fp32", "bf16" or "fp16"."""
    precision = training_precision(cfg.fsq.train.mixed_precision, training_device(cfg))
    return {"no": "fp32"}.get(precision, precision)


class FSQTask:
    """The FSQ autoencoder's training task for ``signgen.training.loop.run_training``."""

    def __init__(self, cfg: SignGenConfig, progress: bool = True) -> None:
        from signgen.data.frame_cache import FrameCache
        from signgen.data.synthsign.dataset import require_dataset_format

        # SMPL-X motion: SynthSign's ground truth or a preprocessed corpus's fits.
        require_dataset_format(Path(cfg.data.root) / cfg.data.dataset, "the FSQ autoencoder")
        self.cfg, self.fsq = cfg, cfg.fsq
        self.video_dir = video_model_folder(cfg)
        self.condition_encoder = load_condition_encoder(self.video_dir)
        self.encoder_hash = weights_hash(self.video_dir / "condition_encoder")
        self.root = Path(cfg.data.root) / cfg.data.dataset
        self.train_frames = FrameCache.open(self.root, "train", progress=progress)
        self.dev_frames = FrameCache.open(self.root, "dev", progress=progress)
        f = self.condition_encoder.downsample_factor
        if self.train_frames.height % f or self.train_frames.width % f:
            raise ConfigError(f"frames of {self.train_frames.height}x{self.train_frames.width} "
                              f"px do not divide by the condition encoder's factor {f}")
        self.targets = PoseTargets(cfg.body)
        body = self.targets.body
        self.train_motion = load_motion(self.root, self.train_frames, body.num_betas,
                                        body.num_expression)
        self.dev_motion = load_motion(self.root, self.dev_frames, body.num_betas,
                                      body.num_expression)
        self.ema_decay = self.fsq.ema_decay
        # A run folder trained on another stage-I encoder or dataset is never resumed.
        self.inputs_version = (f"condition encoder {self.encoder_hash} data "
                               f"{self.train_frames.plan_hash}")
        self._dev = None
        # Each train frame's embedding computed once, at the training's precision.
        self.train_embeddings = EmbeddingCache.open(
            self.train_frames, self.condition_encoder, self.encoder_hash,
            precision=cache_precision(cfg), device=training_device(cfg),
            progress=progress) if self.fsq.embedding_cache else None
        self.embedding_mean, self.embedding_scale, self.embedding_variance = \
            self._embedding_statistics()

    @property
    def clip_length(self) -> int:
        """Frames per training item: 1 unless the model has temporal context."""
        return self.fsq.clip_length if self.fsq.model.temporal_kernel > 1 else 1

    # -- model -----------------------------------------------------------------------------
    def build_model(self):
        model = build_fsq_model(self.fsq.model, self.condition_encoder,
                                self.train_frames.height, self.train_frames.width)
        model.set_embedding_statistics(self.embedding_mean, self.embedding_scale)
        return model

    # -- data ------------------------------------------------------------------------------
    def train_dataset(self) -> FSQItems:
        return FSQItems(self.train_frames, self.train_motion, self.clip_length,
                        embeddings=self.train_embeddings)

    def collate(self, items: list[dict]) -> dict:
        return collate(items)

    # -- helpers ---------------------------------------------------------------------------
    @torch.no_grad()
    def _embed(self, pose_map: torch.Tensor, hand_render: torch.Tensor) -> torch.Tensor:
        """(N,3,H,W) conditions -> (N,E,h,w) float32 stage-I embeddings, every condition
        present (computed at the autocast precision, if any: the training loss)."""
        self.condition_encoder.to(pose_map.device)
        return torch.cat([self.condition_encoder.embed({"pose_map": p, "hand_render": h})
                          for p, h in zip(pose_map.split(CONDITION_BATCH),
                                          hand_render.split(CONDITION_BATCH), strict=True)
                          ]).float()

    def _embedding_statistics(self) -> tuple[torch.Tensor, torch.Tensor, float]:
        """Mean (E,h,w), floored standard deviation (E,h,w) over evenly spaced train
        frames, and the mean variance over frames (the embedding loss's scale)."""
        n = self.train_frames.num_frames
        picked = np.unique(np.linspace(0, n - 1, min(STATISTICS_FRAMES, n)).astype(int))
        embedding = self._embed(images_to_tensor(self.train_frames.pose_map[picked]),
                                images_to_tensor(self.train_frames.hand_render[picked])).double()
        variance = embedding.var(dim=0)
        mean_variance = variance.mean().item()
        if not mean_variance > 0:
            raise SignGenError(f"the condition encoder in {self.video_dir} gives the same "
                               f"embedding for every train frame: nothing to learn")
        scale = variance.sqrt().clamp(min=SCALE_FLOOR * math.sqrt(mean_variance))
        return embedding.mean(dim=0).float(), scale.float(), mean_variance

    def _centred(self, embedding: torch.Tensor) -> torch.Tensor:
        """(N,E,h,w) -> (N,E*h*w) minus the mean train embedding: cosines of what changes
        between frames (raw embeddings share a large constant part)."""
        return (embedding - self.embedding_mean.to(embedding.device)).flatten(1)

    def _pose_input(self, batch: dict) -> torch.Tensor | None:
        """The batch's (N,165) true poses when the model reads them (``pose_input``)."""
        return batch["poses"] if self.fsq.model.pose_input else None

    # -- loss ------------------------------------------------------------------------------
    def _terms(self, model, batch: dict, embedding: torch.Tensor,
               num_frames: int) -> dict[str, torch.Tensor]:
        """The unweighted loss terms of a flat batch (see the module doc)."""
        out = model(embedding, num_frames=num_frames, smplx_pose=self._pose_input(batch))
        cosine = F.cosine_similarity(self._centred(out.embedding), self._centred(embedding))
        return {"embedding_nmse": F.mse_loss(out.embedding, embedding) / self.embedding_variance,
                "cosine": (1 - cosine).mean(), **self.targets.terms(out, batch)}

    def loss(self, model, batch: dict) -> tuple[torch.Tensor, dict[str, float]]:
        device = next(model.parameters()).device
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        frames = batch["poses"].shape[1]
        flat = {k: v.flatten(0, 1) for k, v in batch.items() if isinstance(v, torch.Tensor)}
        embedding = flat["embedding"] if "embedding" in flat \
            else self._embed(flat["pose_map"], flat["hand_render"])
        terms = self._terms(model, flat, embedding, frames)
        w = self.fsq.loss
        loss = (w.embedding_weight * terms["embedding_nmse"]
                + w.embedding_cosine_weight * terms["cosine"]
                + w.pose_weight * terms["pose"] + w.joints_weight * terms["joints"]
                + w.keypoints_weight * terms["keypoints"])
        extra = {k: v.item() for k, v in terms.items()}
        extra["joint_error_mm"] = 1000 * extra.pop("joints")
        return loss, extra

    # -- evaluation and export ------------------------------------------------------------
    def _dev_samples(self) -> list[dict]:
        """Fixed dev samples (whole), each a flat batch with its stage-I embedding and
        true joints, built once."""
        if self._dev is None:
            samples = self.dev_frames.samples
            picked = np.unique(np.linspace(0, len(samples) - 1,
                                           min(DEV_SAMPLES, len(samples))).astype(int))
            starts = np.array([samples[k]["offset"] for k in picked])
            self._dev = []
            for k, start in zip(picked, starts, strict=True):
                items = FSQItems(self.dev_frames, self.dev_motion, int(samples[k]["length"]),
                                 starts=np.array([start]))
                item = items[0]
                item.pop("sample_id")
                item["embedding"] = self._embed(item["pose_map"], item["hand_render"])
                del item["pose_map"], item["hand_render"]
                with torch.no_grad():
                    item["joints"] = self.targets.joints(item["poses"], item)
                self._dev.append(item)
        return self._dev

    def evaluate(self, model) -> dict[str, float]:
        device = next(model.parameters()).device
        sums = {"embedding_mse": 0.0, "embedding_cosine": 0.0, "smplx_joint_error_mm": 0.0,
                "pose_error_deg": 0.0}
        frames, pairs, repeats, kp_error, kp_count = 0, 0, 0, 0.0, 0.0
        indices = []
        height, width = self.dev_frames.height, self.dev_frames.width
        for item in self._dev_samples():
            item = {k: v.to(device) for k, v in item.items()}
            n = len(item["embedding"])
            out = model(item["embedding"], num_frames=n,  # one sample = one clip
                        smplx_pose=self._pose_input(item))
            sums["embedding_mse"] += F.mse_loss(out.embedding, item["embedding"],
                                                reduction="sum").item() / out.embedding[0].numel()
            sums["embedding_cosine"] += F.cosine_similarity(
                self._centred(out.embedding), self._centred(item["embedding"])).sum().item()
            errors = self.targets.errors(out, item, height, width)
            sums["smplx_joint_error_mm"] += errors["smplx_joint_error_mm"]
            sums["pose_error_deg"] += errors["pose_error_deg"]
            kp_error += errors["keypoint_error_px_sum"]
            kp_count += errors["keypoint_count"]
            repeats += (out.indices[1:] == out.indices[:-1]).all(dim=1).sum().item()
            pairs += n - 1
            frames += n
            indices.append(out.indices.flatten().cpu())
        result = {k: v / frames for k, v in sums.items()}
        result["embedding_nmse"] = result["embedding_mse"] / self.embedding_variance
        counts = torch.bincount(torch.cat(indices), minlength=model.codebook_size).double()
        p = counts[counts > 0] / counts.sum()
        result["codebook_usage"] = (counts > 0).sum().item() / model.codebook_size
        result["perplexity"] = math.exp(-(p * p.log()).sum().item())
        result["consecutive_repeat_rate"] = repeats / max(pairs, 1)
        result["keypoint_error_px"] = kp_error / max(kp_count, 1)
        return result

    def export(self, model, folder: Path) -> None:
        model.save_pretrained(folder)
        info = {"video_model": str(self.video_dir), "condition_encoder_hash": self.encoder_hash,
                "embedding_variance": self.embedding_variance,
                "dataset_plan_hash": self.train_frames.plan_hash,
                "frame_size": [self.train_frames.height, self.train_frames.width],
                "codebook_size": model.codebook_size, "tokens_per_frame": model.tokens_per_frame,
                "token_grid": list(model.token_grid)}
        (Path(folder) / "fsq.json").write_text(json.dumps(info, indent=2) + "\n")


def build_task(cfg: SignGenConfig) -> FSQTask:
    return FSQTask(cfg)


def train_config(cfg: SignGenConfig) -> TrainConfig:
    return cfg.fsq.train
