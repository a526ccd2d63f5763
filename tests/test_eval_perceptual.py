"""LPIPS and I3D/FVD: weight files round-trip through the strict loaders, basic properties."""

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from signgen.errors import InvalidInputError
from signgen.eval import perceptual
from signgen.eval.perceptual import LPIPS, InceptionI3d, frechet_distance, fvd, i3d_features


def randomise(module: torch.nn.Module) -> None:
    """Non-trivial BatchNorm statistics, so a load that skipped them would show."""
    for m in module.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)


@pytest.fixture(scope="module")
def lpips_files(tmp_path_factory):
    """A random LPIPS saved as torchvision AlexNet (+ classifier) and official alex.pth files."""
    torch.manual_seed(0)
    model = LPIPS()
    for i in range(5):  # learned channel weights are non-negative
        getattr(model, f"lin{i}").model[1].weight.data.uniform_(0, 1)
    folder = tmp_path_factory.mktemp("lpips")
    alex = {k: v for k, v in model.net.state_dict().items()}
    alex["classifier.1.weight"] = torch.zeros(4, 9216)
    alex["classifier.1.bias"] = torch.zeros(4)
    lins = {f"lin{i}.model.1.weight": getattr(model, f"lin{i}").model[1].weight for i in range(5)}
    assert set(alex) - {"classifier.1.weight", "classifier.1.bias"} == {
        f"features.{i}.{p}" for i in (0, 3, 6, 8, 10) for p in ("weight", "bias")
    }
    torch.save(alex, folder / "alexnet.pth")
    torch.save(lins, folder / "alex.pth")
    save_file({k: v.contiguous() for k, v in alex.items()}, folder / "alexnet.safetensors")
    return model, folder, alex, lins


def images(seed: int, n: int = 2, size: int = 40) -> torch.Tensor:
    return torch.rand(n, 3, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


def test_lpips_loads_from_files(lpips_files):
    model, folder, _, _ = lpips_files
    a, b = images(0), images(1)
    expected = model(a, b)
    assert expected.shape == (2,)
    for alexnet in ("alexnet.pth", "alexnet.safetensors"):
        loaded = LPIPS.from_files(folder / alexnet, folder / "alex.pth")
        torch.testing.assert_close(loaded(a, b), expected, rtol=0, atol=0)


def test_lpips_is_zero_on_identity_and_positive_otherwise(lpips_files):
    model = lpips_files[0]
    a, b = images(0), images(1)
    assert torch.equal(model(a, a), torch.zeros(2))
    assert (model(a, b) > 0).all()
    with pytest.raises(InvalidInputError, match=r"\[-1, 1\]"):
        model(a * 3, b)
    with pytest.raises(InvalidInputError, match="31x31"):
        model(images(0, size=24), images(1, size=24))


def test_lpips_files_with_wrong_keys_are_refused(lpips_files, tmp_path):
    _, folder, alex, lins = lpips_files
    broken = {k: v for k, v in alex.items() if k != "features.6.bias"}
    torch.save(broken, tmp_path / "alexnet.pth")
    with pytest.raises(InvalidInputError, match="missing keys \\['features.6.bias'\\]"):
        LPIPS.from_files(tmp_path / "alexnet.pth", folder / "alex.pth")
    torch.save({**lins, "lin5.model.1.weight": torch.zeros(1, 8, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(InvalidInputError, match="unexpected keys \\['lin5.model.1.weight'\\]"):
        LPIPS.from_files(folder / "alexnet.pth", tmp_path / "alex.pth")
    torch.save({**lins, "lin0.model.1.weight": torch.zeros(1, 32, 1, 1)}, tmp_path / "alex.pth")
    with pytest.raises(InvalidInputError, match="lin0.model.1.weight has shape"):
        LPIPS.from_files(folder / "alexnet.pth", tmp_path / "alex.pth")
    with pytest.raises(InvalidInputError, match="not found"):
        LPIPS.from_files(tmp_path / "absent.pth", folder / "alex.pth")


@pytest.fixture(scope="module")
def i3d_file(tmp_path_factory):
    torch.manual_seed(0)
    model = InceptionI3d(num_classes=7)
    randomise(model)
    path = tmp_path_factory.mktemp("i3d") / "rgb_imagenet.pt"
    # Files from the port predate BatchNorm's num_batches_tracked counter.
    state = {k: v for k, v in model.state_dict().items() if "num_batches_tracked" not in k}
    torch.save(state, path)
    return model, path, state


def clips(seed: int, n: int, frames: int = 10, size: int = 32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, frames, 3, size, size, generator=g) * 2 - 1


def test_i3d_loads_strictly_and_gives_1024_features(i3d_file):
    model, path, state = i3d_file
    assert {"Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_mean",
            "Mixed_3b.b0.conv3d.weight", "Mixed_5c.b3b.bn.running_var",
            "logits.conv3d.weight", "logits.conv3d.bias"} <= set(state)  # fmt: skip
    loaded = InceptionI3d.from_file(path)
    x = clips(0, 1, size=16).transpose(1, 2)  # (1, 3, 10, 16, 16): SAME padding takes any size
    with torch.no_grad():
        expected = model.features(x)
        assert expected.shape == (1, 1024)
        torch.testing.assert_close(loaded.features(x), expected, rtol=0, atol=0)
        assert loaded(x[:, :, :1, :4, :4]).shape == (1, 7)


def test_i3d_file_with_missing_key_is_refused(i3d_file, tmp_path):
    state = {k: v for k, v in i3d_file[2].items() if k != "Mixed_4c.b2b.bn.running_mean"}
    torch.save(state, tmp_path / "i3d.pt")
    with pytest.raises(InvalidInputError, match=r"missing keys \['Mixed_4c.b2b.bn.running_mean'\]"):
        InceptionI3d.from_file(tmp_path / "i3d.pt")


def test_frechet_distance():
    rng = np.random.default_rng(0)
    feats = rng.standard_normal((50, 6))
    mu, sigma = feats.mean(0), np.cov(feats, rowvar=False)
    assert frechet_distance(mu, sigma, mu, sigma) == pytest.approx(0.0, abs=1e-6)
    shift = np.array([0.5, -1.0, 0.0, 2.0, 0.0, 0.0])
    assert frechet_distance(mu, sigma, mu + shift, sigma) == pytest.approx(shift @ shift)
    # Scaled covariance: tr(s1 + s2 - 2 sqrt(s1 s2)) = tr(S)(1 + 4 - 2 * 2) = tr(S).
    assert frechet_distance(mu, sigma, mu, 4 * sigma) == pytest.approx(np.trace(sigma))
    with pytest.raises(InvalidInputError, match="covariances"):
        frechet_distance(mu, sigma, mu[:3], sigma)


def test_fvd_fits_gaussians_to_i3d_features(i3d_file, monkeypatch):
    model = i3d_file[0]
    # The real resize target (224) and a 1024-d sqrtm take far too long for a unit test:
    # shrink the frames and check the statistics handed to the (separately tested) distance.
    monkeypatch.setattr(perceptual, "FVD_SIZE", 16)
    seen = []
    monkeypatch.setattr(perceptual, "frechet_distance", lambda *stats: seen.append(stats) or 1.5)
    real, fake = clips(1, 3, size=20), clips(2, 2, size=20)
    ragged = [fake[0], torch.cat([fake[1], fake[1][:2]])]  # 10 and 12 frames
    assert fvd(real, ragged, model, batch_size=2) == 1.5
    feats_real = i3d_features(real, model)
    feats_fake = i3d_features(ragged, model)
    assert feats_real.shape == (3, 1024) and feats_fake.shape == (2, 1024)
    mu1, sigma1, mu2, sigma2 = seen[0]
    np.testing.assert_allclose(mu1, feats_real.mean(0), atol=1e-6)
    np.testing.assert_allclose(sigma1, np.cov(feats_real, rowvar=False), atol=1e-6)
    np.testing.assert_allclose(mu2, feats_fake.mean(0), atol=1e-6)
    np.testing.assert_allclose(sigma2, np.cov(feats_fake, rowvar=False), atol=1e-6)
    with pytest.raises(InvalidInputError, match="at least 10"):
        fvd(real[:, :9], real, model)
    with pytest.raises(InvalidInputError, match="at least 2 real videos"):
        fvd(real[:1], real, model)
    with pytest.raises(InvalidInputError, match=r"\[-1, 1\]"):
        fvd(real * 2, real, model)
