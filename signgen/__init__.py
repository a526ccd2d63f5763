"""signgen: text to sign language — an identity-preserving signing video and an SMPL-X avatar.

Subpackages: ``config`` (strict YAML configs), ``body`` (SMPL-X body model, keypoint
layouts; the only user of smplx), ``render`` (camera and mesh renderer).
Heavy libraries are imported by the subpackages that need them, not here.
"""

__version__ = "0.1.0.dev0"
