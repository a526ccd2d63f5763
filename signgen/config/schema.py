"""The config schema: one dataclass per section, strict and typed.

Every key a YAML file or ``key=value`` override may set is declared here; anything
else fails at load with the key named (see ``signgen.config.load``). Range and choice
constraints sit in each field's metadata and are checked after merging.
Paths are relative or use ``${oc.env:VAR,default}`` interpolation, never absolute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional


def positive(default):
    return field(default=default, metadata={"min": 1})


def non_negative(default):
    return field(default=default, metadata={"min": 0})


def choice(default, *options):
    return field(default=default, metadata={"choices": options})


@dataclass
class ExperimentConfig:
    """Run identity and where outputs go."""

    name: str = "tiny"
    seed: int = non_negative(0)
    output_dir: str = "${oc.env:SIGNGEN_OUTPUTS,./outputs}/${experiment.name}"
    device: str = choice("auto", "auto", "cpu", "cuda")


@dataclass
class BodyConfig:
    """SMPL-X body model. ``model_dir`` None means ``$SMPLX_MODEL_DIR`` if set, else the
    stand-in shipped in assets/body_models/smplx."""

    model_dir: Optional[str] = None
    gender: str = choice("neutral", "neutral", "male", "female")
    num_betas: int = field(default=10, metadata={"min": 0, "max": 300})
    num_expression: int = field(default=10, metadata={"min": 0, "max": 100})


@dataclass
class RenderConfig:
    """Frame size of rendered conditions and videos, in pixels."""

    height: int = positive(128)
    width: int = positive(128)
    background: List[float] = field(default_factory=lambda: [1.0, 1.0, 1.0])


@dataclass
class DataConfig:
    """Where datasets live and their frame rate."""

    root: str = "${oc.env:SIGNGEN_DATA,./data}"
    dataset: str = "synthsign"
    fps: int = positive(12)


@dataclass
class TrainConfig:
    """Optimisation settings of one trained part (see signgen/training/loop.py)."""

    max_steps: int = positive(1000)
    batch_size: int = positive(8)
    learning_rate: float = field(default=3e-4, metadata={"min": 0.0})
    weight_decay: float = field(default=0.01, metadata={"min": 0.0})
    warmup_steps: int = non_negative(50)
    grad_clip: float = field(default=1.0, metadata={"min": 0.0})
    grad_accumulation: int = positive(1)
    # auto: bf16 where the device computes it natively (CUDA GPUs that support it, CPUs
    # with AMX / AVX-512 BF16), else no. The whole loss runs under the autocast.
    mixed_precision: str = choice("no", "no", "bf16", "fp16", "auto")
    num_workers: int = non_negative(0)
    # torch's fused AdamW kernel (CPU and CUDA) instead of the per-tensor loop: on the
    # 2-core EPYC 1.5-1.8 ms per optimiser step against 5.2 ms for the ~4.5M-parameter FSQ
    # and pose decoder timed alone, ~2 ms per training step in the loop
    # (benchmarks/fused_optimizer.py). Same update up to float rounding; off by default so
    # that the recorded commands of the shipped stages still reproduce their weights.
    fused_optimizer: bool = False
    log_every: int = positive(20)
    eval_every: int = positive(500)
    save_every: int = positive(500)
    keep_checkpoints: int = positive(2)


@dataclass
class SynthSignConfig:
    """The synthetic corpus: how many signers and samples per split, which languages.

    Test signers (``num_unseen_signers``) never appear in train/dev; dev and
    test_novel_sentences use sentence frames held out of training (built from known
    signs only)."""

    seed: int = non_negative(0)
    num_signers: int = positive(24)
    num_unseen_signers: int = positive(4)
    num_train: int = positive(1600)
    num_dev: int = non_negative(100)
    num_test_novel_sentences: int = non_negative(150)
    num_test_unseen_signers: int = non_negative(150)
    # More training sentences (split train_extra), planned after the four splits above
    # and from held-in sentence frames only: the test splits and the plan hash that every
    # trained stage records stay as they are (signgen/data/synthsign/generate.py).
    num_train_extra: int = non_negative(0)
    languages: List[str] = field(default_factory=lambda: ["ssl-a", "ssl-b"])
    language_weights: List[float] = field(default_factory=lambda: [0.75, 0.25])
    held_out_sentence_fraction: float = field(default=0.1, metadata={"min": 0.0, "max": 0.5})
    workers: int = positive(2)

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        problems = []
        if self.num_unseen_signers >= self.num_signers:
            problems.append(f"num_unseen_signers ({self.num_unseen_signers}) must be smaller "
                            f"than num_signers ({self.num_signers}): training needs signers")
        if len(self.languages) != len(self.language_weights) or not self.languages:
            problems.append("languages and language_weights must be non-empty and of equal "
                            "length")
        elif min(self.language_weights) < 0 or sum(self.language_weights) <= 0:
            problems.append("language_weights must be >= 0 with a positive sum")
        if len(set(self.languages)) != len(self.languages):
            problems.append("languages must not repeat")
        held_out = self.num_dev + self.num_test_novel_sentences
        if held_out and self.held_out_sentence_fraction == 0:
            problems.append("dev/test_novel_sentences need held_out_sentence_fraction > 0")
        return problems


@dataclass
class RecogniserModelConfig:
    """Back-translation recogniser (video or pose -> glosses); see signgen/eval/recogniser.py.

    Keyword arguments of ``VideoGlossRecogniser`` (all) and ``PoseGlossRecogniser`` (all but
    the video-only ``input_size`` and ``channels``); the vocabulary and languages come from
    the dataset's lexicon. Defaults are sized for a 2-core CPU."""

    input_size: int = positive(64)
    channels: List[int] = field(default_factory=lambda: [16, 32, 64, 128])
    dim: int = positive(192)
    temporal_stride: int = positive(2)
    conv_layers: int = non_negative(2)
    temporal_kernel: int = positive(5)
    num_layers: int = non_negative(2)
    num_heads: int = positive(4)
    dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 0.9})


@dataclass
class KeypointModelConfig:
    """Keypoint estimator (frame -> 133 COCO-WholeBody keypoints); signgen/eval/keypoints.py.

    Keyword arguments of ``KeypointEstimator`` (the 133 keypoints are fixed by the layout).
    Defaults are sized for a 2-core CPU."""

    input_size: int = positive(128)
    channels: List[int] = field(default_factory=lambda: [32, 64, 96, 128])
    heatmap_stride: int = choice(4, 2, 4, 8, 16)

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        problems = []
        if len(self.channels) < 2 or min(self.channels) < 1:
            problems.append(f"channels needs >= 2 positive widths, got {self.channels}")
        elif self.input_size % 2 ** len(self.channels):
            problems.append(f"input_size ({self.input_size}) must be a multiple of "
                            f"2**len(channels) = {2 ** len(self.channels)}")
        elif self.heatmap_stride > 2 ** len(self.channels):
            problems.append(f"heatmap_stride ({self.heatmap_stride}) must be at most "
                            f"2**len(channels) = {2 ** len(self.channels)}")
        return problems


@dataclass
class HandKeypointModelConfig:
    """Hand refiner (hand crop -> 21 keypoints); signgen/eval/hand_keypoints.py.

    Keyword arguments of ``HandRefiner`` but ``frame_size`` (the keypoint estimator's
    ``input_size``: crops are cut at the scale the coarse stage sees). 40 px holds the
    hand: its farthest point lies <= 17.6 px from the mean of its points in 99.9 % of
    SynthSign frames, the coarse estimator's hand centre is 1.4-2 px off, and 99.8 % of
    the test hands' points fall inside its crops. Defaults are sized for a 2-core CPU."""

    crop_size: int = positive(40)
    channels: List[int] = field(default_factory=lambda: [24, 48, 96])

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        if len(self.channels) not in (2, 3) or min(self.channels) < 1:
            return [f"channels needs 2 or 3 positive widths, got {self.channels}"]
        if self.crop_size < 2 ** len(self.channels) or \
                self.crop_size % 2 ** (len(self.channels) - 1):
            return [f"crop_size ({self.crop_size}) must be a multiple of "
                    f"2**(len(channels) - 1) = {2 ** (len(self.channels) - 1)}"]
        return []


@dataclass
class IdentityModelConfig:
    """Signer-appearance embedding (frame -> unit vector); signgen/eval/identity.py.

    Keyword arguments of ``IdentityEncoder`` but ``num_classes`` (the dataset's training
    signers). Defaults are sized for a 2-core CPU."""

    input_size: int = positive(64)
    channels: List[int] = field(default_factory=lambda: [32, 64, 128, 128])
    embedding_dim: int = positive(64)
    logit_scale: float = field(default=16.0, metadata={"min": 1.0})

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        if not self.channels or min(self.channels) < 1:
            return [f"channels needs positive widths, got {self.channels}"]
        if self.input_size < 2 ** len(self.channels):
            return [f"input_size ({self.input_size}) is too small for {len(self.channels)} "
                    f"stride-2 stages"]
        return []


def train_splits_problems(splits) -> list[str]:
    """Why ``splits`` is not a valid ``train_splits`` list (empty when it is)."""
    splits = list(splits)
    if not splits or len(set(splits)) < len(splits) or any(
            s == "dev" or s.startswith("test") for s in splits):
        return [f"train_splits must be distinct training splits (not dev or a test split), "
                f"got {splits}"]
    return []


@dataclass
class RecogniserSection:
    model: RecogniserModelConfig = field(default_factory=RecogniserModelConfig)
    # SynthSign splits of ground-truth videos it learns from (e.g. [train, train_extra]:
    # synthsign.num_train_extra); never dev or a test split.
    train_splits: List[str] = field(default_factory=lambda: ["train"])
    train: TrainConfig = field(default_factory=TrainConfig)

    def check(self) -> list[str]:
        return train_splits_problems(self.train_splits)


@dataclass
class KeypointSection:
    model: KeypointModelConfig = field(default_factory=KeypointModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class HandKeypointSection:
    model: HandKeypointModelConfig = field(default_factory=HandKeypointModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class IdentitySection:
    model: IdentityModelConfig = field(default_factory=IdentityModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class EvalConfig:
    """The evaluation suite: trained evaluators and optional third-party weights.

    ``weights_dir`` holds signgen's own evaluators (one sub-folder each); LPIPS and
    I3D (FVD) weights are used only when their local paths are set."""

    weights_dir: str = "${oc.env:SIGNGEN_ASSETS,./assets}/evaluators"
    recogniser: RecogniserSection = field(default_factory=RecogniserSection)
    pose_recogniser: RecogniserSection = field(default_factory=RecogniserSection)
    # The video back-translation path: the keypoint estimator, then a pose recogniser
    # trained on the estimator's keypoints of the ground-truth train videos.
    video_pose_recogniser: RecogniserSection = field(default_factory=RecogniserSection)
    keypoints: KeypointSection = field(default_factory=KeypointSection)
    # Second stage of the keypoint estimator: hands re-estimated from native-scale crops.
    hand_keypoints: HandKeypointSection = field(default_factory=HandKeypointSection)
    identity: IdentitySection = field(default_factory=IdentitySection)
    # LPIPS ('alex'): a torchvision-format AlexNet state dict and the LPIPS lin layers.
    lpips_alexnet_weights: Optional[str] = None
    lpips_lin_weights: Optional[str] = None
    i3d_weights: Optional[str] = None  # pytorch-i3d rgb_imagenet.pt, for FVD
    pck_threshold: float = field(default=0.05, metadata={"min": 0.0})


@dataclass
class VAEModelConfig:
    """Latent autoencoder of the video model (``diffusers.AutoencoderKL``).

    ``pretrained_path``: a local diffusers AutoencoderKL folder (full scale: sd-vae-ft-mse),
    used frozen; None trains the small VAE below on the dataset's frames
    (``python train.py --stage vae``). The spatial factor is 2**(len(block_out_channels)-1)."""

    pretrained_path: Optional[str] = None
    block_out_channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    layers_per_block: int = positive(1)
    latent_channels: int = positive(4)
    norm_num_groups: int = positive(16)
    mid_block_attention: bool = True  # self-attention at the lowest resolution
    # Training settings of the small VAE (not constructor arguments):
    kl_weight: float = field(default=1.0e-6, metadata={"min": 0.0})
    # Train on random square crops of this size (None: whole frames). The VAE is fully
    # convolutional (without mid-block attention), so crops cut the cost per step.
    train_crop: Optional[int] = None
    # Loss weight of the hand pixels (the 3D-hand render's pixels, dilated by one; the rest
    # of the signer gets FOREGROUND_WEIGHT): fingers are ~1 % of a frame and carry the signing.
    # 1 leaves them at the signer's weight.
    hand_weight: float = field(default=1.0, metadata={"min": 1.0})
    # Probability per frame of one random colour change (channel order and per-channel
    # gain, as video.colour_augment): a VAE that saw only the training signers' colours
    # decodes an unseen signer's grey background as a training signer's green.
    colour_augment: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})


@dataclass
class ConditionEncoderModelConfig:
    """Multi-condition encoder (``signgen.models.condition_encoder``): one conv branch per
    condition, a learned per-pixel gate, an embedding map at the latent resolution.
    ``block_out_channels`` must downsample by the VAE factor (len = VAE's len)."""

    conditions: List[str] = field(default_factory=lambda: ["pose_map", "hand_render"])
    # A trained MultiConditionEncoder folder (e.g. a pipeline's ``condition_encoder``),
    # loaded and kept frozen in phase 1: the renderer is retrained around an existing
    # embedding (say, on a new VAE), so FSQ autoencoders and translators trained on that
    # embedding stay valid. None: the encoder is built from the keys below and trained.
    pretrained_path: Optional[str] = None
    block_out_channels: List[int] = field(default_factory=lambda: [16, 32, 64])
    embedding_channels: int = positive(32)
    # Training: each condition is dropped independently with this probability.
    condition_dropout: float = field(default=0.15, metadata={"min": 0.0, "max": 1.0})


@dataclass
class ReferenceEncoderModelConfig:
    """Reference-image encoder (``signgen.models.reference_encoder``): the signer's image
    -> a grid of identity tokens the denoiser cross-attends to, computed once per video."""

    block_out_channels: List[int] = field(default_factory=lambda: [32, 64, 128, 128])
    # Training: the reference is replaced by the learned null tokens with this probability
    # (classifier-free guidance on identity).
    reference_dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    # Also concatenate the reference image's VAE latent to the denoiser's input (its
    # in_channels double), dropped together with the tokens: a spatially aligned
    # appearance signal beside the cross-attended tokens.
    concat_latent: bool = False


@dataclass
class DenoiserModelConfig:
    """The latent denoiser: ``UNet2DConditionModel`` (phase 1), lifted to
    ``UNetMotionModel`` with a ``MotionAdapter`` (phase 2).

    ``pretrained_path`` / ``motion_adapter_path``: local diffusers folders (full scale:
    SD-1.5 ``unet`` and AnimateDiff motion modules); None builds the small UNet below."""

    pretrained_path: Optional[str] = None
    motion_adapter_path: Optional[str] = None
    block_out_channels: List[int] = field(default_factory=lambda: [32, 64, 128])
    layers_per_block: int = positive(1)
    # Number of attention heads per block (diffusers' ``attention_head_dim`` in UNet2D).
    attention_heads: int = positive(2)
    cross_attention_dim: int = positive(128)
    motion_num_attention_heads: int = positive(2)
    motion_max_seq_length: int = positive(32)
    prediction_type: str = choice("epsilon", "epsilon", "v_prediction")
    num_train_timesteps: int = positive(1000)
    # Rescale the betas so that the last timestep is pure noise (Lin et al. 2024, "Common
    # Diffusion Noise Schedules and Sample Steps are Flawed"); needs v_prediction. Without
    # it the model reads the low frequencies of the initial noise as signal: a frame's
    # mean colour (the background) follows the noise, not the reference.
    zero_terminal_snr: bool = False

    def check(self) -> list[str]:
        if self.zero_terminal_snr and self.prediction_type != "v_prediction":
            return ["video.denoiser.zero_terminal_snr needs prediction_type v_prediction "
                    "(epsilon cannot be predicted from pure noise)"]
        return []


@dataclass
class VideoSamplingConfig:
    """Inference defaults of the video pipeline."""

    scheduler: str = choice("dpmsolver++", "ddim", "dpmsolver++", "euler")
    num_inference_steps: int = positive(20)
    guidance_scale: float = field(default=1.0, metadata={"min": 0.0})
    window: int = positive(8)  # frames denoised together (<= the training clip_length)
    overlap: int = non_negative(2)  # frames shared by consecutive windows
    # Windows per UNet call (0: all of a video's windows at once: faster on a CPU, more
    # memory; 1: one at a time). The video does not depend on it beyond float rounding.
    window_batch: int = non_negative(1)
    # bf16: the networks run under bfloat16 autocast (GPUs; CPUs with AMX / AVX-512 BF16);
    # auto: bf16 where the device computes it natively, else fp32.
    precision: str = choice("fp32", "fp32", "bf16", "auto")


@dataclass
class RenderDecoderConfig:
    """Tuning the VAE decoder on the trained renderer's own latents (``python train.py
    --stage render_decoder``, after ``--stage video``; see
    signgen/training/tasks/render_decoder.py)."""

    # Part of the demo recipe (--stage demo): the pipeline gets the tuned decoder.
    enabled: bool = False
    train_clips: int = positive(48)  # train samples rendered once for the tuning
    eval_clips: int = positive(4)  # dev samples rendered for its evaluation
    # Share of the clips rendered from a recoloured reference, their frames recoloured
    # alike (as video.colour_augment in the renderer's training).
    colour_augment: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    train: TrainConfig = field(default_factory=TrainConfig)


@dataclass
class VideoConfig:
    """Stage I, the sign video diffusion model (``python train.py --stage vae|video``)."""

    vae: VAEModelConfig = field(default_factory=VAEModelConfig)
    condition_encoder: ConditionEncoderModelConfig = field(
        default_factory=ConditionEncoderModelConfig)
    reference_encoder: ReferenceEncoderModelConfig = field(
        default_factory=ReferenceEncoderModelConfig)
    denoiser: DenoiserModelConfig = field(default_factory=DenoiserModelConfig)
    sampling: VideoSamplingConfig = field(default_factory=VideoSamplingConfig)
    clip_length: int = positive(8)  # frames per training clip in phase 2
    # Training: probability per sample of one random colour change (channel order and
    # per-channel gain) applied alike to its frames and its reference image, so the model
    # copies colours from the reference instead of memorising the training signers'.
    colour_augment: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    # Training: weight of the denoising error on the latent cells under the 3D-hand render
    # (``latent_hand_weight``; the rest weigh 1); 1 is the plain MSE. ``dev_loss`` stays
    # unweighted; ``dev_loss_hands`` is the error on the hand cells alone. Tiny, 7000
    # steps: 16 lowered the dev hand-cell error by 29 % (0.236 vs 0.334) but not the
    # videos' scores (24 unseen-signer clips: bt_wer 0.889 vs 0.867, PCK 0.846 vs 0.848,
    # masked SSIM 0.644 vs 0.651; results [handloss16-steps3-bf16]): so 1.
    hand_loss_weight: float = field(default=1.0, metadata={"min": 1.0})
    # Training: probability per sample that its reference is a random frame of the same
    # signer instead of the signer's reference image. The reference image always shows
    # the rest pose, and with concat_latent the UNet learnt to copy that pose pixel for
    # pixel (a shifted reference shifted the body; raised arms came out as ghosts over
    # the rest pose): a reference in another pose leaves the pose to the conditions.
    # Tiny, 1.0, 4500 phase-1 steps: less limb copying (benchmarks/reference_probe.py) but
    # worse videos (24 unseen-signer clips: bt_wer 0.989, PCK 0.799, masked SSIM 0.598
    # against 0.867 / 0.848 / 0.651 at 7000 steps without; results
    # [refframes-4500-steps3-bf16]): so 0.
    reference_from_frames: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    # A condition adapter (``signgen.models.condition_adapter``): the condition embedding
    # also reaches every skip connection and the mid block of the UNet through trainable,
    # zero-initialised convolutions (ControlNet-style residuals, computed once per video).
    # Without it the conditions enter only at conv_in through the (frozen, pretrained)
    # encoder's projection. On in the tiny config (configs/tiny.yaml has the numbers).
    condition_adapter: bool = False
    # Training, with concat_latent: each sample's concatenated reference latent is moved by
    # a random offset of up to this many latent cells in each direction (edges repeated),
    # so that the UNet cannot copy the reference's pose pixel for pixel (the body then
    # has to come from the conditions) but still reads its colours; 0 = aligned.
    # Tiny, 4 (+-16 px), otherwise the shipped recipe (7000 + 250 steps): the copying goes
    # (benchmarks/reference_probe.py --measure: follow_ratio -0.01 against 0.98, PCK with
    # a shifted reference 0.77 against 0.004; docs/reference_probe_shift4.png) and 24
    # unseen-signer clips read a little better (bt_wer 0.778, hand PCK 0.475 against
    # 0.844 / 0.463), but colours and face go: identity 0.583, masked SSIM 0.507 against
    # 1.000 / 0.705 (results [shift4-steps3-bf16] / [adapter-rdec-steps3-bf16]; matching
    # each frame's colour statistics to the reference brings identity back to 1.000 but
    # masked SSIM only to 0.522, [shift4-colourmatch-frame]): so 0.
    reference_shift: int = non_negative(0)
    # Recompute the UNet's activations in the backward pass: less memory, ~20 % slower
    # (docs/training.md).
    gradient_checkpointing: bool = False
    # EMA of the trained weights (exported and evaluated); 0 turns it off.
    ema_decay: float = field(default=0.999, metadata={"min": 0.0, "max": 0.99999})
    vae_train: TrainConfig = field(default_factory=TrainConfig)
    # Then fine-tune the small VAE's decoder alone (``--stage vae_decoder``; the encoder and
    # so the latent space stay fixed); off: the video model uses the VAE as trained.
    finetune_vae_decoder: bool = False
    vae_decoder_train: TrainConfig = field(default_factory=TrainConfig)
    phase1_train: TrainConfig = field(default_factory=TrainConfig)  # single frames, all parts
    phase2_train: TrainConfig = field(default_factory=TrainConfig)  # clips, temporal layers
    render_decoder: RenderDecoderConfig = field(default_factory=RenderDecoderConfig)

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        problems = []
        if (self.vae.pretrained_path is None and self.condition_encoder.block_out_channels
                and len(self.condition_encoder.block_out_channels)
                != len(self.vae.block_out_channels)):
            problems.append("video.condition_encoder.block_out_channels must have as many "
                            "stages as video.vae.block_out_channels (same downsampling)")
        if self.sampling.overlap >= self.sampling.window:
            problems.append(f"video.sampling.overlap ({self.sampling.overlap}) must be "
                            f"smaller than video.sampling.window ({self.sampling.window})")
        if self.sampling.window > self.clip_length:
            problems.append(f"video.sampling.window ({self.sampling.window}) exceeds "
                            f"video.clip_length ({self.clip_length}): the temporal layers "
                            f"would see frame positions they were never trained on")
        if self.clip_length > self.denoiser.motion_max_seq_length:
            problems.append("video.clip_length exceeds video.denoiser.motion_max_seq_length")
        if self.reference_shift and not self.reference_encoder.concat_latent:
            problems.append("video.reference_shift moves the concatenated reference latent: "
                            "it needs video.reference_encoder.concat_latent=true")
        return problems


@dataclass
class FSQModelConfig:
    """FSQ autoencoder (``signgen.models.fsq_autoencoder.FSQAutoencoder``): keyword
    arguments but ``embedding_channels`` / ``embedding_size``, which come from the stage-I
    condition encoder and the frame size. Each of ``hidden_channels`` halves the map:
    tiny 32x32 -> 4x4 = 16 tokens per frame; ``codebook_size`` = prod(levels)."""

    hidden_channels: List[int] = field(default_factory=lambda: [64, 128, 128])
    levels: List[int] = field(default_factory=lambda: [5, 5, 5, 5])
    temporal_kernel: int = positive(1)  # odd; 1 = frames independent
    pose_hidden: int = positive(512)
    # The encoder also reads each frame's SMPL-X pose (tokenising then needs the motion).
    pose_input: bool = False

    def check(self) -> list[str]:
        """Problems that involve several keys (empty when consistent)."""
        problems = []
        if not self.hidden_channels or min(self.hidden_channels) < 1:
            problems.append(f"hidden_channels needs positive widths, got {self.hidden_channels}")
        if not self.levels or min(self.levels) < 3:
            problems.append(f"levels must each be >= 3, got {self.levels}")
        if self.temporal_kernel % 2 == 0:
            problems.append(f"temporal_kernel must be odd, got {self.temporal_kernel}")
        return problems


@dataclass
class FSQLossConfig:
    """Weights of the FSQ autoencoder's loss terms (signgen/training/tasks/fsq.py)."""

    # MSE to the stage-I embedding / its frame-to-frame variance (1 = the mean embedding)
    embedding_weight: float = field(default=1.0, metadata={"min": 0.0})
    # 1 - cosine per frame of the embeddings minus their mean
    embedding_cosine_weight: float = field(default=0.0, metadata={"min": 0.0})
    pose_weight: float = field(default=1.0, metadata={"min": 0.0})  # rotation-matrix MSE
    joints_weight: float = field(default=10.0, metadata={"min": 0.0})  # mean joint error, m
    keypoints_weight: float = field(default=1.0, metadata={"min": 0.0})  # L1, normalised


@dataclass
class FSQConfig:
    """Stage II, the FSQ multi-condition autoencoder (``python train.py --stage fsq``).

    ``video_model``: the stage-I pipeline folder whose (frozen) condition encoder makes
    the embeddings to compress. ``clip_length`` frames per training clip when
    ``model.temporal_kernel`` > 1 (single frames otherwise)."""

    model: FSQModelConfig = field(default_factory=FSQModelConfig)
    loss: FSQLossConfig = field(default_factory=FSQLossConfig)
    video_model: str = "${experiment.output_dir}/video_temporal/model"
    clip_length: int = positive(8)
    ema_decay: float = field(default=0.0, metadata={"min": 0.0, "max": 0.99999})  # 0 = off
    # Embed every train frame once into a float16 cache on disk
    # (signgen.data.embedding_cache), not at every step: E*h*w*2 bytes per frame, 64 KB
    # at tiny scale (5.9 GB for SynthSign's train split), far more at full scale.
    embedding_cache: bool = False
    # configs/tiny.yaml has the measured recipe (1e-3 collapsed the codebook there).
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=3000, batch_size=16, learning_rate=6e-4, warmup_steps=100, log_every=50,
        eval_every=500, save_every=500, mixed_precision="auto"))


@dataclass
class TextToFramesModelConfig:
    """Transformer sizes both translators share (``TextToFramesMixin``)."""

    dim: int = positive(256)
    num_heads: int = positive(4)
    encoder_layers: int = positive(3)
    decoder_layers: int = positive(3)
    ffn_mult: int = positive(4)
    dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 0.9})
    max_text_length: int = positive(128)
    max_frames: int = positive(256)

    def check(self) -> list[str]:
        if self.dim % self.num_heads:
            return [f"num_heads ({self.num_heads}) must divide dim ({self.dim})"]
        return []


@dataclass
class TranslatorModelConfig(TextToFramesModelConfig):
    """Text -> token translator (``signgen.models.translator.SignTranslator``): keyword
    arguments but the vocabulary, codebook, tokens per frame and FSQ levels, which come
    from the tokenizer and the FSQ autoencoder. ``head``: "digits", one distribution per
    FSQ level of each token slot; "codes", one codebook-size distribution per slot.
    Tiny, 4000 steps, 150 novel sentences: digits pose back-translation WER 1.014, codes
    1.136; 5.9 M parameters instead of 10.9 M (results text2avatar [digits])."""

    head: str = choice("digits", "codes", "digits")
    # Add an embedding of the sign-language tag to every decoder input frame (see
    # SignTranslator); off keeps the language in the encoded text alone. Tiny, 150 novel
    # sentences, against the same recipe without it: read closer to the other language's
    # order 9.2 / 9.2 % (ssl-a / ssl-b) against 9.2 / 6.2 %, text2avatar pose BT-WER 0.845
    # against 0.796, DTW 0.283 against 0.248: no gain, so off. On the fast stage II's
    # tokens: pose BT-WER 0.616 against 0.574, sign pairs in the other language's order
    # 2.9 / 7.7 % against 0 / 0 % (benchmarks/language_order.py, [lang-emb-fast-stage2]).
    language_embedding: bool = False
    # Segment conditioning (see SignTranslator): embed which segment (rest, stroke,
    # transition, ...) and which frame of it each decoder step is on, learned from the
    # corpus' sign timing (SynthSign's gloss spans) and advanced by the model's own
    # boundary decisions at inference. 0: off. Tiny, 15k-step FSQ's tokens, 150 novel
    # sentences, text2avatar pose BT-WER / DTW-MJE: 32 segments 0.925 / 0.244 against
    # 0.778 / 0.247 without (same recipe; 0.913 / 0.238 with 32 and no scheduled
    # sampling). The sampled lengths drift (dev: 34 frames off against 13): so off.
    max_segments: int = non_negative(0)
    max_segment_frames: int = positive(32)
    # Signer conditioning (see SignTranslator): an embedding of whom the frames are for
    # (the training corpus' signer ids; unknown signers share one "any signer" entry,
    # learnt from translator.signer_dropout of the training inputs). Tiny, 15k-step FSQ's
    # tokens, 150 novel sentences, text2avatar pose BT-WER / DTW-MJE: told the sample's
    # signer 0.911 / 0.146, told nothing 0.843 / 0.236, against 0.778 / 0.247 without
    # conditioning. The poses come much closer to the signer's own (handedness, speed,
    # space: 4 of the 20 training signers sign left-handed). By handedness
    # (benchmarks/handedness_split.py): right-handed signers' sentences read as well as
    # without conditioning (0.759 against 0.761, 126 sentences), left-handed ones babble
    # left-handed signs and run on (1.714, +42 frames, 24 sentences; 0.868 without).
    # With canonical handedness (translator.canonical_handedness) 0.770 / 0.139 against
    # 0.628 / 0.170 without signer conditioning: closer poses, worse reading, so off.
    signer_conditioning: bool = False
    # Frames written per decoder step (see SignTranslator): k frames' tokens in and out of
    # each step, so decoding takes T/k steps (a step's cost at batch 1 is mostly fixed
    # overhead). Needs max_segments 0. Tiny, 2: half the decoding time (52 vs 104 ms per
    # sentence, benchmarks/translator_speed.py) but text2avatar pose BT-WER 0.702 / DTW
    # 0.167 against 0.628 / 0.170 with 1 (4000 steps each, shipped recipe, 150 novel
    # sentences, results [canon-k2]): so 1.
    frames_per_step: int = positive(1)

    def check(self) -> list[str]:
        problems = super().check()
        if self.frames_per_step > 1 and self.max_segments:
            problems.append("frames_per_step > 1 needs max_segments 0")
        return problems


@dataclass
class TranslatorDecodingConfig:
    """How the translator picks each frame's tokens at inference (sample.py, the eval
    systems). Sampling (seeded: the same seed gives the same tokens) is the default:
    greedy decoding of the tiny translator falls into repeating one frame and rarely ends
    (dev, step 2000: 88% repeated frames, 181 frames too long; sampling at temperature 1:
    0% and 23)."""

    greedy: bool = False
    temperature: float = field(default=1.0, metadata={"min": 1e-3})
    top_k: int = non_negative(0)  # 0: all codes
    top_p: float = field(default=1.0, metadata={"min": 1e-3, "max": 1.0})
    # Draw this many token sequences per sentence (one batch) and keep the one whose
    # decoded pose is closest (DTW) to the others': minimum-Bayes-risk choice, see
    # signgen/pipelines/candidate_selection.py. 1: the single draw. Tiny, 150 novel
    # sentences: 16 draws take text2avatar from 0.902 / 0.300 (pose BT-WER / DTW-MJE)
    # to 0.763 / 0.238 and text2video from 1.073 to 0.984 BT-WER.
    candidates: int = positive(1)


@dataclass
class TranslatorConfig:
    """Stage III, the text-to-token translator (``python train.py --stage translator``).

    ``fsq_model``: the exported FSQ autoencoder whose token datasets (made with
    ``python -m signgen.data.tokens``) the translator learns. ``gloss_input_rate``:
    share of training inputs given as glosses instead of text (one model, both inputs).
    ``corruption_rate``: share of the decoder's input codes replaced by random ones
    (counters copying the previous frame; targets stay clean). ``scheduled_sampling``:
    share of the decoder's input frames replaced by frames the model samples itself in a
    first, teacher-forced pass (0 = off); the share rises linearly from 0 over the first
    ``scheduled_sampling_ramp`` of ``train.max_steps``. Teacher forcing alone drifts at
    inference: on 60 dev sentences (benchmarks/translator_exposure.py, pose-input FSQ
    tokens) teacher-forced argmax frames give pose back-translation WER 0.46, free-running
    samples 0.92; trained with 0.5, 0.77 (tiny: text2avatar 1.007 -> 0.902)."""

    model: TranslatorModelConfig = field(default_factory=TranslatorModelConfig)
    decoding: TranslatorDecodingConfig = field(default_factory=TranslatorDecodingConfig)
    fsq_model: str = "${experiment.output_dir}/fsq/model"
    gloss_input_rate: float = field(default=0.25, metadata={"min": 0.0, "max": 1.0})
    corruption_rate: float = field(default=0.15, metadata={"min": 0.0, "max": 1.0})
    scheduled_sampling: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    scheduled_sampling_ramp: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
    # With model.signer_conditioning: share of training inputs whose signer is hidden
    # (given as "unknown"), so that the model also signs for signers it never saw.
    signer_dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
    # Learn the left-handed signers' samples as their mirror images (tokens made with
    # python -m signgen.data.tokens --canonical-handedness; SynthSign only: it records
    # handedness): every sign is learnt right-handed from all the data, and the pipeline
    # mirrors the output back for a left-handed signer (signgen/data/synthsign/mirroring.py).
    # Tiny (on in tiny.yaml), 15k-step FSQ's tokens, 150 novel sentences, text2avatar pose
    # BT-WER / DTW-MJE: 0.628 / 0.170 against 0.778 / 0.247 without.
    canonical_handedness: bool = False
    # Token splits it learns from (e.g. [train, train_extra]: synthsign.num_train_extra).
    train_splits: List[str] = field(default_factory=lambda: ["train"])
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=4000, batch_size=16, learning_rate=5e-4, warmup_steps=200, log_every=50,
        eval_every=1000, save_every=500))

    def check(self) -> list[str]:
        return train_splits_problems(self.train_splits)


@dataclass
class PoseDecoderConfig:
    """The token pose decoder (``python train.py --stage pose_decoder``,
    ``signgen.models.token_pose_decoder.TokenPoseDecoder``): the avatar's SMPL-X pose and
    keypoints from FSQ token sequences, with temporal context, trained on the frozen
    ``fsq_model``'s tokens of the train split (``python -m signgen.data.tokens``) against
    the corpus' SMPL-X motion; it starts as a copy of that FSQ's pose head. The tokens
    stay the FSQ's, so the translator trained on them needs nothing new.

    ``temporal_kernel`` / ``temporal_layers``: the frame blocks over the pose trunk
    (0 layers = only retrain the per-frame head). ``clip_length``: frames per training
    clip (random windows of the train samples). Loss weights as in ``fsq.loss``."""

    enabled: bool = False  # --stage demo trains it after the translator and ships it
    fsq_model: str = "${translator.fsq_model}"
    temporal_kernel: int = positive(5)
    temporal_layers: int = non_negative(2)
    # Depthwise + 1x1 frame convs instead of full ones: a third of their FLOPs (tiny, 2
    # blocks, 2-core EPYC: 57 against 70 ms per step).
    separable_frame_blocks: bool = False
    # Each input token replaced by a random code with this probability while training
    # (targets stay clean): the decoder must read the pose from the context as well.
    token_corruption: float = field(default=0.0, metadata={"min": 0.0, "max": 1.0})
    clip_length: int = positive(32)
    # false: the copied token-grid feature convs (the FSQ's from_code, and its decoder
    # temporal conv) stay as the FSQ trained them; only the pose trunk, the frame blocks
    # and the heads learn (no convolution backward: a cheaper step).
    train_token_features: bool = True
    # Token splits it learns from (e.g. [train, train_extra], as the translator's).
    train_splits: List[str] = field(default_factory=lambda: ["train"])
    pose_weight: float = field(default=1.0, metadata={"min": 0.0})
    joints_weight: float = field(default=10.0, metadata={"min": 0.0})
    keypoints_weight: float = field(default=1.0, metadata={"min": 0.0})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=3000, batch_size=8, learning_rate=3e-4, warmup_steps=100, log_every=50,
        eval_every=500, save_every=500))

    def check(self) -> list[str]:
        problems = []
        if self.temporal_kernel % 2 == 0:
            problems.append(f"temporal_kernel must be odd, got {self.temporal_kernel}")
        return problems + train_splits_problems(self.train_splits)


@dataclass
class RegressionTranslatorModelConfig(TextToFramesModelConfig):
    """Text -> SMPL-X pose regressor (``signgen.models.regression_translator.
    RegressionTranslator``): the translator's keys, smaller by default."""

    dim: int = positive(128)
    encoder_layers: int = positive(2)
    decoder_layers: int = positive(2)


@dataclass
class RegressionTranslatorConfig:
    """Issue #7's continuous-regression baseline, Progressive-Transformers style
    (``python train.py --stage regression_translator``): text -> SMPL-X pose directly.

    ``input_noise``: std of the Gaussian noise on the teacher-forced input poses, in
    standardised units (train-set std per value). ``counter_weight``: weight of the
    progress counter's BCE. ``joints_weight``: weight of the body-model joint distance
    (metres; 0 = off: with it a step costs ~23x more, 3.1 s instead of 0.13 s)."""

    model: RegressionTranslatorModelConfig = field(
        default_factory=RegressionTranslatorModelConfig)
    input_noise: float = field(default=0.15, metadata={"min": 0.0})
    counter_weight: float = field(default=1.0, metadata={"min": 0.0})
    joints_weight: float = field(default=0.0, metadata={"min": 0.0})
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        max_steps=8000, batch_size=16, learning_rate=5e-4, warmup_steps=100, log_every=50,
        eval_every=1000, save_every=500))


@dataclass
class SignGenConfig:
    """Top-level config; ``extends`` names the YAML this one is layered on."""

    extends: Optional[str] = None
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synthsign: SynthSignConfig = field(default_factory=SynthSignConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    fsq: FSQConfig = field(default_factory=FSQConfig)
    translator: TranslatorConfig = field(default_factory=TranslatorConfig)
    pose_decoder: PoseDecoderConfig = field(default_factory=PoseDecoderConfig)
    regression_translator: RegressionTranslatorConfig = field(
        default_factory=RegressionTranslatorConfig)
