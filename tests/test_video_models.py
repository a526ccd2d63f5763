"""Condition encoder, reference encoder and denoiser helpers of the sign video model.

Tiny sizes throughout: 16x16 condition/reference images, 8x8x4 latents, widths 8-32.
"""

import pytest
import torch

from signgen.errors import InvalidInputError
from signgen.models import MultiConditionEncoder, ReferenceEncoder, random_condition_mask
from signgen.models.denoiser import (
    add_to_conv_in,
    batch_to_frames,
    build_unet,
    frames_to_batch,
    freeze_except_motion,
    load_motion_adapter,
    load_motion_unet,
    load_unet,
    new_motion_adapter,
    repeat_for_frames,
    to_motion_unet,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZE, LATENT, WIDTHS, TOKEN_DIM = 16, 8, (16, 32), 16
B, F = 2, 3  # clips, frames per clip


def make_condition_encoder(**overrides) -> MultiConditionEncoder:
    kwargs = dict(conditions=["pose_map", "hand_render"], in_channels=3, block_out_channels=[8, 16],
                  embedding_channels=8, out_channels=WIDTHS[0])
    return MultiConditionEncoder(**{**kwargs, **overrides})


def make_reference_encoder() -> ReferenceEncoder:
    return ReferenceEncoder(in_channels=3, block_out_channels=[8, 16], token_dim=TOKEN_DIM)


def make_unet():
    return build_unet(sample_size=LATENT, block_out_channels=WIDTHS, attention_heads=2,
                      cross_attention_dim=TOKEN_DIM)


def conditions(n: int, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {name: torch.rand(n, 3, SIZE, SIZE, generator=g) for name in ("pose_map", "hand_render")}


def randomise(model: torch.nn.Module, seed: int, pattern: str = "") -> None:
    """Overwrite parameters whose name contains ``pattern`` with noise (so zero-initialised
    parts take part in a comparison)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if pattern in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=g))


@pytest.fixture(scope="module")
def unet():
    torch.manual_seed(0)
    return make_unet().eval()


@pytest.fixture(scope="module")
def clip_inputs():
    g = torch.Generator().manual_seed(1)
    sample = torch.randn(B, 4, F, LATENT, LATENT, generator=g)  # (B,C,F,h,w)
    tokens = torch.randn(B, 5, TOKEN_DIM, generator=g)  # per clip
    return sample, tokens


# ---------------------------------------------------------------- save / load round trips


def test_condition_encoder_round_trip(tmp_path):
    torch.manual_seed(0)
    encoder = make_condition_encoder()
    randomise(encoder, 1, "projection")
    encoder.save_pretrained(tmp_path)
    written = {p.name for p in tmp_path.iterdir()}
    assert {"config.json", "diffusion_pytorch_model.safetensors"} <= written
    loaded = MultiConditionEncoder.from_pretrained(tmp_path)
    mask = torch.tensor([[True, True], [True, False], [False, False]])
    a, b = encoder(conditions(3), mask), loaded(conditions(3), mask)
    for key in ("embedding", "gates", "residual"):
        assert torch.equal(a[key], b[key]), key
    assert a.residual.abs().sum() > 0
    assert loaded.condition_names == ["pose_map", "hand_render"] and loaded.downsample_factor == 2


def test_reference_encoder_round_trip(tmp_path):
    torch.manual_seed(0)
    encoder = make_reference_encoder()
    randomise(encoder, 1, "null_token")
    encoder.save_pretrained(tmp_path)
    loaded = ReferenceEncoder.from_pretrained(tmp_path)
    image = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    drop = torch.tensor([False, True])
    assert torch.equal(encoder(image, drop).tokens, loaded(image, drop).tokens)


def test_unet_round_trip(tmp_path, unet, clip_inputs):
    sample, tokens = clip_inputs
    x, ehs = frames_to_batch(sample), repeat_for_frames(tokens, F)
    unet.save_pretrained(tmp_path)
    loaded = load_unet(tmp_path).eval()
    with torch.no_grad():
        assert torch.equal(unet(x, 7, ehs).sample, loaded(x, 7, ehs).sample)
    blocks = unet.config
    assert blocks.down_block_types == ("DownBlock2D", "CrossAttnDownBlock2D")
    assert blocks.up_block_types == ("CrossAttnUpBlock2D", "UpBlock2D")
    assert unet.down_blocks[1].attentions[0].transformer_blocks[0].attn2.heads == 2


def test_motion_unet_and_adapter_round_trip(tmp_path, unet, clip_inputs):
    sample, tokens = clip_inputs
    ehs = repeat_for_frames(tokens, F)
    motion = to_motion_unet(unet).eval()
    randomise(motion, 2, "motion_modules")  # a trained adapter is not the identity
    motion.save_pretrained(tmp_path / "unet")
    motion.save_motion_modules(tmp_path / "adapter")
    loaded = load_motion_unet(tmp_path / "unet").eval()
    relifted = to_motion_unet(unet, load_motion_adapter(tmp_path / "adapter")).eval()
    with torch.no_grad():
        expected = motion(sample, 7, ehs).sample
        assert torch.equal(expected, loaded(sample, 7, ehs).sample)
        assert torch.equal(expected, relifted(sample, 7, ehs).sample)


# ---------------------------------------------------------------- injection routes


def test_zero_initialised_residual_leaves_unet_unchanged(unet):
    encoder = make_condition_encoder()
    out = encoder(conditions(2))
    assert out.residual.shape == (2, WIDTHS[0], LATENT, LATENT)
    assert torch.count_nonzero(out.residual) == 0 and out.embedding.abs().sum() > 0
    x, ehs = torch.randn(2, 4, LATENT, LATENT), torch.randn(2, 5, TOKEN_DIM)
    with torch.no_grad():
        plain = unet(x, 3, ehs).sample
        with add_to_conv_in(unet, out.residual):
            assert torch.equal(unet(x, 3, ehs).sample, plain)
        with add_to_conv_in(unet, torch.randn_like(out.residual)):
            assert not torch.allclose(unet(x, 3, ehs).sample, plain, atol=1e-3)
        noise = torch.randn_like(out.residual)
        with pytest.raises(RuntimeError, match="boom"), add_to_conv_in(unet, noise):
            raise RuntimeError("boom")
        assert torch.equal(unet(x, 3, ehs).sample, plain)  # hooks removed, also after the error
    assert not unet.conv_in._forward_hooks


def test_lifted_motion_unet_equals_2d_unet_per_frame(unet, clip_inputs):
    """Zero-initialised temporal modules: the video UNet is the image UNet frame by frame,
    also with a conv_in residual given in clip-major (b*F + f) order."""
    sample, tokens = clip_inputs
    motion = to_motion_unet(unet).eval()
    ehs = repeat_for_frames(tokens, F)
    residual = torch.randn(B * F, WIDTHS[0], LATENT, LATENT)
    with torch.no_grad():
        video = motion(sample, 7, ehs).sample
        assert video.shape == sample.shape  # (B,C,F,h,w) in and out
        frames = batch_to_frames(unet(frames_to_batch(sample), 7, ehs).sample, F)
        torch.testing.assert_close(video, frames, atol=1e-5, rtol=1e-5)
        with add_to_conv_in(motion, residual):
            video = motion(sample, 7, ehs).sample
        with add_to_conv_in(unet, residual):
            frames = batch_to_frames(unet(frames_to_batch(sample), 7, ehs).sample, F)
        torch.testing.assert_close(video, frames, atol=1e-5, rtol=1e-5)
        with pytest.raises(RuntimeError):  # per-clip tokens are not repeated by diffusers
            motion(sample, 7, tokens)


def test_frame_layout_helpers():
    x = torch.arange(2 * 1 * 3).float().reshape(2, 1, 3, 1, 1)  # (B,C,F,h,w), value = b*F + f
    assert frames_to_batch(x).flatten().tolist() == list(range(6))
    assert torch.equal(batch_to_frames(frames_to_batch(x), 3), x)
    tokens = torch.arange(2).float().reshape(2, 1, 1)
    assert repeat_for_frames(tokens, 3).flatten().tolist() == [0, 0, 0, 1, 1, 1]


def test_freeze_except_motion(unet):
    motion = to_motion_unet(unet)
    trainable = freeze_except_motion(motion)
    names = {id(p): n for n, p in motion.named_parameters()}
    assert trainable and all(".motion_modules." in names[id(p)] for p in trainable)
    frozen = [n for n, p in motion.named_parameters() if not p.requires_grad]
    assert frozen and not any(".motion_modules." in n for n in frozen)
    assert len(trainable) + len(frozen) == len(names)


def test_one_step_lowers_loss():
    torch.manual_seed(0)
    encoder, unet = make_condition_encoder(), make_unet()
    params = [*encoder.parameters(), *unet.parameters()]
    optimiser = torch.optim.Adam(params, lr=1e-3)
    x, ehs = torch.randn(2, 4, LATENT, LATENT), torch.randn(2, 5, TOKEN_DIM)
    target, cond = torch.randn_like(x), conditions(2)

    def loss_fn():
        with add_to_conv_in(unet, encoder(cond).residual):
            return torch.nn.functional.mse_loss(unet(x, 5, ehs).sample, target)

    before = loss_fn()
    before.backward()
    assert encoder.projection.weight.grad.abs().sum() > 0  # zero init still learns
    optimiser.step()
    with torch.no_grad():
        assert loss_fn() < before.detach()


# ---------------------------------------------------------------- gating and masking


def test_gates_sum_to_one_over_present_conditions():
    encoder = make_condition_encoder()
    mask = torch.tensor([[True, True], [True, False], [False, True], [False, False]])
    out = encoder(conditions(4), mask)
    assert out.gates.shape == (4, 2, LATENT, LATENT)
    assert out.embedding.shape == (4, 8, LATENT, LATENT)
    sums = out.gates.sum(dim=1)
    torch.testing.assert_close(sums[:3], torch.ones_like(sums[:3]))
    assert torch.count_nonzero(out.gates[1, 1]) == 0 and torch.count_nonzero(out.gates[2, 0]) == 0
    assert torch.equal(out.gates[1, 0], torch.ones(LATENT, LATENT))


def test_masked_condition_input_is_ignored():
    encoder = make_condition_encoder()
    randomise(encoder, 3, "projection")
    mask = torch.tensor([[True, False], [True, False]])
    a, b = conditions(2, seed=0), conditions(2, seed=0)
    b["hand_render"] = torch.rand(2, 3, SIZE, SIZE)
    out_a, out_b = encoder(a, mask), encoder(b, mask)
    assert torch.equal(out_a.embedding, out_b.embedding)
    assert torch.equal(out_a.residual, out_b.residual)
    # a condition masked for every sample may be left out
    omitted = encoder({"pose_map": a["pose_map"]}, mask)
    assert torch.equal(omitted.embedding, out_a.embedding)


def test_all_masked_gives_zero_embedding_and_gradients_without_nan():
    encoder = make_condition_encoder()
    mask = torch.tensor([[False, False], [True, False]])
    cond = {k: v.requires_grad_() for k, v in conditions(2).items()}
    out = encoder(cond, mask)
    assert torch.count_nonzero(out.embedding[0]) == 0 and torch.count_nonzero(out.gates[0]) == 0
    out.embedding.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)
    assert torch.isfinite(cond["pose_map"].grad).all()


def test_random_condition_mask():
    g = torch.Generator().manual_seed(0)
    mask = random_condition_mask(1000, 2, 0.3, g)
    assert mask.shape == (1000, 2) and mask.dtype == torch.bool
    assert 0.6 < mask.float().mean() < 0.8
    assert torch.equal(mask, random_condition_mask(1000, 2, 0.3, torch.Generator().manual_seed(0)))
    assert random_condition_mask(4, 2, 0.0).all() and not random_condition_mask(4, 2, 1.0).any()


# ---------------------------------------------------------------- reference encoder


def test_dropped_reference_gives_null_tokens():
    encoder = make_reference_encoder()
    randomise(encoder, 4, "null_token")
    images = torch.rand(2, 3, SIZE, SIZE) * 2 - 1
    drop = torch.tensor([True, False])
    a = encoder(images, drop).tokens
    b = encoder(torch.rand(2, 3, SIZE, SIZE) * 2 - 1, drop).tokens
    assert a.shape == (2, (SIZE // 4) ** 2, TOKEN_DIM)
    null = encoder.null_tokens(1, SIZE, SIZE)
    assert torch.equal(a[:1], null) and torch.equal(b[:1], null)
    assert not torch.equal(a[1], b[1])
    assert torch.equal(a[1], encoder(images).tokens[1])


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize("case, match", [
    ("wrong_channels", r"\(N,3,H,W\)"),
    ("mismatched_shapes", "share one shape"),
    ("unknown_name", "unknown condition"),
    ("missing_unmasked", "missing but not masked"),
    ("not_divisible", "divisible by 2"),
    ("mask_dtype", "condition_mask must be bool"),
    ("mask_shape", "condition_mask must be bool"),
    ("empty", "no condition tensor"),
])
def test_condition_encoder_rejects_bad_input(case, match):
    encoder = make_condition_encoder()
    cond, mask = conditions(2), None
    if case == "wrong_channels":
        cond = {k: v[:, :1] for k, v in cond.items()}
    elif case == "mismatched_shapes":
        cond["hand_render"] = cond["hand_render"][:1]
    elif case == "unknown_name":
        cond["depth"] = cond["pose_map"]
    elif case == "missing_unmasked":
        del cond["hand_render"]
        mask = torch.tensor([[True, False], [True, True]])
    elif case == "not_divisible":
        cond = {k: v[..., :15] for k, v in cond.items()}
    elif case == "mask_dtype":
        mask = torch.ones(2, 2)
    elif case == "mask_shape":
        mask = torch.ones(2, 3, dtype=torch.bool)
    elif case == "empty":
        cond = {}
    with pytest.raises(InvalidInputError, match=match):
        encoder(cond, mask)


def test_constructors_and_helpers_reject_bad_arguments(unet, tmp_path):
    with pytest.raises(InvalidInputError, match="unique"):
        make_condition_encoder(conditions=["pose_map", "pose_map"])
    with pytest.raises(InvalidInputError, match="identifiers"):
        make_condition_encoder(conditions=["pose.map"])
    with pytest.raises(InvalidInputError, match="embedding must be"):
        make_condition_encoder().project(torch.zeros(1, 3, 4, 4))
    with pytest.raises(InvalidInputError, match="drop_probability"):
        random_condition_mask(2, 2, 1.5)
    reference = make_reference_encoder()
    with pytest.raises(InvalidInputError, match=r"\(N,3,H,W\)"):
        reference(torch.zeros(1, 1, SIZE, SIZE))
    with pytest.raises(InvalidInputError, match="multiples of 4"):
        reference(torch.zeros(1, 3, 18, SIZE))
    with pytest.raises(InvalidInputError, match="drop must be bool"):
        reference(torch.zeros(2, 3, SIZE, SIZE), torch.tensor([1, 0]))
    with pytest.raises(InvalidInputError, match="attention_heads"):
        build_unet(block_out_channels=(16, 24), attention_heads=5)
    with pytest.raises(InvalidInputError, match="residual must be"):
        add_to_conv_in(unet, torch.zeros(1, 3, LATENT, LATENT)).__enter__()
    with add_to_conv_in(unet, torch.zeros(3, WIDTHS[0], LATENT, LATENT)):
        with pytest.raises(InvalidInputError, match="does not match conv_in"):
            unet(torch.zeros(2, 4, LATENT, LATENT), 1, torch.zeros(2, 5, TOKEN_DIM))
    other = build_unet(sample_size=LATENT, block_out_channels=(16, 16),
                       cross_attention_dim=TOKEN_DIM)
    with pytest.raises(InvalidInputError, match="do not match"):
        to_motion_unet(unet, new_motion_adapter(other))
    with pytest.raises(InvalidInputError, match="config.json missing"):
        load_unet(tmp_path / "nowhere")
    make_reference_encoder().save_pretrained(tmp_path / "ref")
    with pytest.raises(InvalidInputError, match="holds a ReferenceEncoder"):
        load_unet(tmp_path / "ref")
    with pytest.raises(InvalidInputError, match="UNetMotionModel"):
        freeze_except_motion(unet)
