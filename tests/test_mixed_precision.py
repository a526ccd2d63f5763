"""Models' outputs survive ``accelerate``'s mixed precision.

With ``mixed_precision`` bf16/fp16, ``Accelerator.prepare`` wraps a model's forward in
``convert_outputs_to_fp32``, which rebuilds a mapping output as ``type(out)({...})``. A
diffusers ``BaseOutput`` dataclass takes that only if every field after the first has a
default (as diffusers' own outputs do); otherwise every bf16 training of the FSQ
autoencoder, the translators and the evaluators fails on its first step.
"""

import dataclasses
import importlib

import pytest
import torch
from accelerate.utils import convert_outputs_to_fp32, convert_to_fp32
from diffusers.utils import BaseOutput

MODULES = ("signgen.models.condition_encoder", "signgen.models.reference_encoder",
           "signgen.models.fsq_autoencoder", "signgen.models.translator",
           "signgen.models.regression_translator", "signgen.eval.recogniser",
           "signgen.eval.keypoints", "signgen.eval.hand_keypoints", "signgen.eval.identity")


def output_classes():
    found = []
    for name in MODULES:
        module = importlib.import_module(name)
        found += [obj for obj in vars(module).values() if isinstance(obj, type)
                  and issubclass(obj, BaseOutput) and obj is not BaseOutput
                  and obj.__module__ == name]
    return found


def test_every_model_module_has_an_output_class():
    assert len(output_classes()) >= len(MODULES)


@pytest.mark.parametrize("cls", output_classes(), ids=lambda c: c.__name__)
def test_output_converts_to_fp32(cls):
    values = {f.name: torch.full((2,), float(i), dtype=torch.bfloat16)
              for i, f in enumerate(dataclasses.fields(cls))}
    out = convert_to_fp32(cls(**values))
    assert type(out) is cls
    for i, f in enumerate(dataclasses.fields(cls)):
        value = getattr(out, f.name)
        assert value.dtype == torch.float32 and torch.equal(value, torch.full((2,), float(i)))
        assert torch.equal(out[f.name], value)


def test_fsq_autoencoder_and_translator_train_under_bf16_autocast():
    """The forward as ``Accelerator.prepare`` wraps it under bf16 (autocast + fp32
    outputs): outputs keep their fields, come back fp32, and a loss backpropagates."""
    from signgen.models.fsq_autoencoder import FSQAutoencoder
    from signgen.models.translator import SignTranslator, translator_loss

    torch.manual_seed(0)
    fsq = FSQAutoencoder(embedding_channels=4, embedding_size=(8, 8), hidden_channels=(8, 16),
                         pose_hidden=32)
    forward = convert_outputs_to_fp32(torch.autocast("cpu", dtype=torch.bfloat16)(fsq.forward))
    out = forward(torch.randn(3, 4, 8, 8))
    assert out.embedding.dtype == out.smplx_pose.dtype == torch.float32
    assert out.indices.dtype == torch.long and out.indices.shape == (3, 4)
    (out.embedding.square().mean() + out.rotations.square().mean()).backward()
    assert fsq.encoder_in.weight.grad is not None

    translator = SignTranslator(vocab_size=20, codebook_size=12, tokens_per_frame=3, dim=32,
                                num_heads=2, encoder_layers=1, decoder_layers=1, ffn_mult=2,
                                max_text_length=16, max_frames=12, levels=[3, 4])
    forward = convert_outputs_to_fp32(
        torch.autocast("cpu", dtype=torch.bfloat16)(translator.forward))
    text = torch.randint(1, 20, (2, 5))
    frames = torch.randint(0, 12, (2, 4, 3))
    out = forward(text, torch.ones_like(text, dtype=torch.bool), frames)
    assert out.code_logits.dtype == torch.float32 and out.levels == (3, 4)
    loss, _ = translator_loss(out, frames, torch.tensor([4, 3]))
    loss.backward()
    assert translator.code_head.weight.grad is not None


def test_fsq_pose_head_computes_in_float32_under_autocast():
    """Under bf16 autocast the convolutions run in bf16 but the pose encoder and head
    do not: their rotations equal the float32 computation on the same decoder
    features, and the decoded embedding comes back float32 and row-major."""
    from signgen.models.fsq_autoencoder import FSQAutoencoder

    torch.manual_seed(0)
    fsq = FSQAutoencoder(embedding_channels=4, embedding_size=(8, 8), hidden_channels=(8, 16),
                         pose_hidden=32, pose_input=True).eval()
    pose = 0.3 * torch.randn(3, 165)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        encoded = fsq.encode(torch.randn(3, 4, 8, 8), smplx_pose=pose)
        half = fsq.decode(encoded.codes)
        features = fsq.from_code(encoded.codes)
    assert half.rotations.dtype == half.smplx_pose.dtype == half.keypoints.dtype == torch.float32
    assert half.embedding.dtype == torch.float32 and half.embedding.is_contiguous()
    with torch.no_grad():
        d6 = fsq.to_rotations(fsq.pose_trunk(features.float()))
    from signgen.models.fsq_autoencoder import rotation_6d_to_matrix
    assert torch.equal(half.rotations, rotation_6d_to_matrix(d6.view(3, -1, 6)))


@pytest.mark.parametrize("native", [False, True])
def test_auto_training_precision_is_bf16_only_where_native(native, monkeypatch):
    from signgen.precision import native_bf16, training_precision

    for probe in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"):
        monkeypatch.setattr(torch.cpu, probe, lambda: native, raising=False)
    assert native_bf16("cpu") is native
    assert training_precision("auto", "cpu") == ("bf16" if native else "no")
    for fixed in ("no", "bf16", "fp16"):
        assert training_precision(fixed, "cpu") == fixed


def test_body_model_joints_stay_float32_under_autocast():
    """The FSQ task's joints (metres) are computed in float32 inside a bf16 autocast,
    to the same values as outside it."""
    from signgen.body.joint_model import JointModel
    from signgen.body.model import BodyModel
    from signgen.precision import float32

    joint_model = JointModel(BodyModel()).requires_grad_(False)
    torch.manual_seed(0)
    pose, shape, transl = 0.2 * torch.randn(2, 55, 3), torch.zeros(2, 20), torch.zeros(2, 3)
    reference = joint_model(pose, shape, transl)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        with float32("cpu"):
            inside = joint_model(pose, shape, transl)
        rounded = joint_model(pose, shape, transl)
    assert inside.dtype == torch.float32 and torch.equal(inside, reference)
    assert not torch.equal(rounded.float(), reference)  # what float32() prevents
