"""The stage-I embedding cache: the encoder's embeddings of the frame cache's frames, built
once, reused, rebuilt when killed or when the encoder changes; tokenising and the FSQ
training read it."""

import shutil

import numpy as np
import pytest
import torch

from signgen.data import embedding_cache
from signgen.data.embedding_cache import EmbeddingCache
from signgen.data.frame_cache import FrameCache
from signgen.errors import SignGenError


def encoder(seed: int = 0):
    from signgen.models.condition_encoder import MultiConditionEncoder

    torch.manual_seed(seed)
    return MultiConditionEncoder(block_out_channels=[4, 8], embedding_channels=4,
                                 out_channels=4).eval()


@pytest.fixture(scope="module")
def root(tiny_data_root, tmp_path_factory):
    dst = tmp_path_factory.mktemp("ec") / "ds"
    shutil.copytree(tiny_data_root / "synthsign", dst, ignore=shutil.ignore_patterns("cache"))
    return dst


@pytest.fixture(scope="module")
def frames(root):
    return FrameCache.open(root, "train", progress=False)


def expected_embeddings(model, frames, dtype=None) -> torch.Tensor:
    conditions = {key: torch.from_numpy(np.array(getattr(frames, key))).movedim(-1, 1)
                  .float() / 255 for key in ("pose_map", "hand_render")}
    with torch.no_grad(), torch.autocast("cpu", dtype=dtype or torch.bfloat16,
                                         enabled=dtype is not None):
        return model.embed(conditions).float()


def test_content_is_the_encoders_embedding_of_each_frame(frames, one_thread):
    model = encoder()
    cache = EmbeddingCache.open(frames, model, "hash-a", progress=False)
    expected = expected_embeddings(model, frames)
    assert cache.embedding.dtype == np.float16
    assert tuple(cache.embedding.shape) == (frames.num_frames, 4, 32, 32)
    got = cache.read(0, frames.num_frames)
    torch.testing.assert_close(got, expected, atol=1e-3 * expected.abs().max().item(),
                               rtol=1e-3)
    k = 1
    start, length = int(frames.offsets[k]), int(frames.lengths[k])
    assert torch.equal(cache.sample(k), got[start:start + length])
    with pytest.raises(IndexError):
        cache.read(0, frames.num_frames + 1)


def test_bf16_embeddings_are_stored_as_computed(frames, one_thread):
    model = encoder()
    cache = EmbeddingCache.open(frames, model, "hash-a", precision="bf16", progress=False)
    assert cache.precision == "bf16" and cache.folder.name.endswith("-bf16")
    expected = expected_embeddings(model, frames, torch.bfloat16)
    torch.testing.assert_close(cache.read(0, frames.num_frames), expected, atol=1e-4, rtol=0)


def test_reopen_reuses_and_another_encoder_gets_its_own_cache(frames, monkeypatch, one_thread):
    first = EmbeddingCache.open(frames, encoder(), "hash-a", progress=False)

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt a complete cache")

    monkeypatch.setattr(embedding_cache, "_build", fail)
    again = EmbeddingCache.open(frames, encoder(), "hash-a", build=False)
    assert again.folder == first.folder
    with pytest.raises(SignGenError, match="missing or incomplete"):
        EmbeddingCache.open(frames, encoder(1), "hash-b", build=False)
    monkeypatch.undo()
    other = EmbeddingCache.open(frames, encoder(1), "hash-b", progress=False)
    assert other.folder != first.folder
    assert not np.array_equal(np.asarray(other.embedding), np.asarray(first.embedding))
    with pytest.raises(SignGenError, match="precision"):
        EmbeddingCache.open(frames, encoder(), "hash-a", precision="int8")


def test_killed_build_is_rebuilt(root, one_thread):
    frames = FrameCache.open(root, "dev", progress=False)
    built = EmbeddingCache.open(frames, encoder(), "hash-k", progress=False)
    folder = built.folder
    shutil.rmtree(folder)  # killed before its rename: only the .tmp folder is left
    tmp = folder.with_name(folder.name + ".tmp")
    tmp.mkdir()
    (tmp / "embedding.f16").write_bytes(b"partial")
    with pytest.raises(SignGenError):
        EmbeddingCache.open(frames, encoder(), "hash-k", build=False)
    rebuilt = EmbeddingCache.open(frames, encoder(), "hash-k", progress=False)
    assert not tmp.exists()
    np.testing.assert_array_equal(rebuilt.embedding, built.embedding)


def test_an_encoder_beyond_float16_is_refused(frames, one_thread):
    model = encoder()
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(1e3)
    with pytest.raises(SignGenError, match="outside float16"):
        EmbeddingCache.open(frames, model, "hash-big", progress=False)
    left = [p.name for p in frames.folder.parent.glob("embeddings-*hash-big*")]
    assert [name for name in left if not name.endswith(".lock")] == []  # no data left


def test_tokenising_reads_the_cache(root, frames, tmp_path, one_thread):
    """Tokens from the cache are the FSQ codes of the cached embeddings (the same
    embeddings up to float16 rounding as those computed from the frames)."""
    from test_fsq_autoencoder import tiny_model

    from signgen.data.tokens import load_tokens, tokenise_split

    model_encoder = encoder()
    fsq = tiny_model(embedding_channels=4, embedding_size=(32, 32))
    cache = EmbeddingCache.open(frames, model_encoder, "hash-a", progress=False)
    cached = load_tokens(tokenise_split(fsq, model_encoder, root, "train", tmp_path / "a",
                                        fsq_id="x", progress=False, embeddings=cache), "x")
    direct = load_tokens(tokenise_split(fsq, model_encoder, root, "train", tmp_path / "b",
                                        fsq_id="x", progress=False), "x")
    same = []
    for k, (a, b) in enumerate(zip(cached.samples, direct.samples, strict=True)):
        with torch.no_grad():
            expected = fsq.encode(cache.sample(k), num_frames=len(a["tokens"])).indices
        assert np.array_equal(a["tokens"], expected.numpy())
        assert a["sample_id"] == b["sample_id"] and a["text"] == b["text"]
        same.append((a["tokens"] == b["tokens"]).mean())
    assert np.mean(same) > 0.95
    with pytest.raises(SignGenError, match="not of dev's samples"):
        tokenise_split(fsq, model_encoder, root, "dev", tmp_path / "c", fsq_id="x",
                       progress=False, embeddings=cache)
