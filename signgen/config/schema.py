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
class SignGenConfig:
    """Top-level config; ``extends`` names the YAML this one is layered on."""

    extends: Optional[str] = None
    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    body: BodyConfig = field(default_factory=BodyConfig)
    render: RenderConfig = field(default_factory=RenderConfig)
    data: DataConfig = field(default_factory=DataConfig)
    synthsign: SynthSignConfig = field(default_factory=SynthSignConfig)
