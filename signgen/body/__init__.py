"""SMPL-X body model (official files or signgen's open stand-in) and keypoint layouts."""

from signgen.body.model import (
    NUM_OUTPUT_JOINTS,
    OUTPUT_JOINT_NAMES,
    BodyModel,
    BodyOutput,
    SMPLXParams,
)

__all__ = ["NUM_OUTPUT_JOINTS", "OUTPUT_JOINT_NAMES", "BodyModel", "BodyOutput", "SMPLXParams"]
