"""Shared test fixtures: one tiny SynthSign dataset per session, single-threaded torch."""

from pathlib import Path

import pytest
import torch

from signgen.config import load_config
from signgen.data.synthsign.generate import generate

# 64 px frames at 8 fps, 6 signers (2 unseen); enough planned training sentences to
# cover the held-out ones, of which only TINY_RENDERED are rendered.
TINY_SYNTHSIGN = ["synthsign.num_signers=6", "synthsign.num_unseen_signers=2",
                  "synthsign.num_train=150", "synthsign.num_dev=1",
                  "synthsign.num_test_novel_sentences=1", "synthsign.num_test_unseen_signers=2",
                  "synthsign.num_train_extra=1",
                  "render.height=64", "render.width=64", "data.fps=8"]
TINY_RENDERED = ["train-00000", "train-00001", "train-00002", "dev-00000",
                 "test_novel_sentences-00000", "test_unseen_signers-00000",
                 "test_unseen_signers-00001", "train_extra-00000"]


@pytest.fixture(scope="session")
def tiny_data_root(tmp_path_factory) -> Path:
    """A data root holding ``synthsign/`` with the TINY_RENDERED samples (read-only:
    tests that change a dataset generate their own)."""
    root = tmp_path_factory.mktemp("tiny_data")
    generate(load_config("tiny", TINY_SYNTHSIGN), root / "synthsign", workers=1,
             only=TINY_RENDERED, progress=False)
    return root


@pytest.fixture(scope="session")
def tiny_overrides(tiny_data_root) -> list[str]:
    """Config overrides that point the tiny config at the tiny dataset."""
    return [*TINY_SYNTHSIGN, f"data.root={tiny_data_root}"]


@pytest.fixture
def one_thread():
    """Tiny tensors: a second thread only adds synchronisation, which on a busy machine
    (the other core taken) costs a scheduler slice per operation, seconds per test."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def engine(tmp_path_factory) -> Path:
    """A tiny random ``SignGenPipeline`` saved to a folder that ships one signer image,
    ``signers/s7.png`` (read-only: tests that change it work on a copy)."""
    import numpy as np
    from PIL import Image
    from test_sign_gen_pipeline import build

    folder = tmp_path_factory.mktemp("engine")
    build().save_pretrained(folder)
    (folder / "signers").mkdir()
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(folder / "signers" / "s7.png")
    return folder
