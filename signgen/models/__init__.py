"""Networks of the sign video diffusion model (diffusers ``ModelMixin + ConfigMixin``):
the multi-condition encoder, the reference (identity) encoder and the denoiser helpers.
Constructors take plain keyword arguments; nothing here reads configs."""

from signgen.models.condition_encoder import (
    ConditionEncoderOutput,
    MultiConditionEncoder,
    random_condition_mask,
)
from signgen.models.reference_encoder import ReferenceEncoder, ReferenceEncoderOutput

__all__ = ["ConditionEncoderOutput", "MultiConditionEncoder", "ReferenceEncoder",
           "ReferenceEncoderOutput", "random_condition_mask"]
