"""Strict configs: every shipped YAML loads; bad keys, types and ranges are named."""

import pytest

from signgen.config import config_hash, load_config
from signgen.errors import ConfigError
from signgen.paths import configs_dir

SHIPPED = sorted(p.stem for p in configs_dir().glob("*.yaml"))


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_config_loads(name):
    cfg = load_config(name)
    assert cfg.render.height > 0


@pytest.mark.parametrize("corpus, fps", [("phoenix14t", 25), ("how2sign", 24)])
def test_corpus_configs_load_at_full_scale(corpus, fps):
    cfg = load_config(str(configs_dir() / "full" / f"{corpus}.yaml"))
    assert (cfg.data.dataset, cfg.data.fps, cfg.render.height) == (corpus, fps, 272)
    assert cfg.experiment.output_dir.endswith(corpus)


@pytest.mark.parametrize("name", ["multi_gpu", "fsdp", "deepspeed_zero2"])
def test_accelerate_configs_parse(name):
    from accelerate.commands.config.config_args import ClusterConfig

    cluster = ClusterConfig.from_yaml_file(str(configs_dir() / "accelerate" / f"{name}.yaml"))
    assert cluster.num_processes == 8 and cluster.mixed_precision == "no"


def test_no_absolute_paths_in_configs():
    for path in configs_dir().rglob("*.yaml"):
        for line in path.read_text().splitlines():
            value = line.split("#")[0].partition(":")[2].strip()
            assert not value.startswith(("/", "~")), f"{path.name}: {line}"


def test_variants_layer_on_base_and_overrides_win():
    tiny, full = load_config("tiny"), load_config("full")
    assert (tiny.render.height, full.render.height) == (128, 272)
    assert tiny.data.dataset == full.data.dataset == "synthsign"  # from base.yaml
    cfg = load_config("tiny", ["render.width=64", "experiment.seed=7"])
    assert cfg.render.width == 64 and cfg.experiment.seed == 7
    assert cfg.experiment.output_dir.endswith("outputs/tiny")


def test_yaml_boolean_words_stay_words_in_overrides():
    """``mixed_precision=no`` is the word "no", not YAML 1.1's false; boolean keys still
    take yes/no/on/off."""
    cfg = load_config("tiny", ["video.phase1_train.mixed_precision=no",
                               "video.gradient_checkpointing=on",
                               "video.finetune_vae_decoder=No"])
    assert cfg.video.phase1_train.mixed_precision == "no"
    assert cfg.video.gradient_checkpointing is True
    assert cfg.video.finetune_vae_decoder is False


def test_env_interpolation(monkeypatch):
    monkeypatch.setenv("SIGNGEN_DATA", "somewhere/data")
    assert load_config("tiny").data.root == "somewhere/data"


@pytest.mark.parametrize("override, message", [
    ("render.hieght=64", "render.hieght"),
    ("rendr.height=64", "rendr"),
    ("render.height=tall", "render.height"),
    ("render.height=0", "render.height: 0 is below the minimum 1"),
    ("experiment.seed=-3", "experiment.seed"),
    ("body.gender=robot", "body.gender"),
    ("experiment.device=tpu", "experiment.device"),
    ("no_equals_sign", "section.key=value"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace(".", r"\.")):
        load_config("tiny", [override])


def test_bad_files(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("extends: tiny\nrender:\n  heigth: 3\n")
    with pytest.raises(ConfigError, match="heigth"):
        load_config(bad)
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(bad)
    loop = tmp_path / "loop.yaml"
    loop.write_text("extends: loop.yaml\n")
    with pytest.raises(ConfigError, match="cycle"):
        load_config(loop)
    with pytest.raises(ConfigError, match="not found"):
        load_config("no_such_config")


def test_user_config_extends_a_shipped_one_by_relative_path(tmp_path):
    mine = tmp_path / "mine.yaml"
    mine.write_text("extends: full\nrender:\n  width: 200\n")
    cfg = load_config(mine)
    assert (cfg.render.height, cfg.render.width) == (272, 200)


def test_hash_ignores_machine_local_paths(monkeypatch):
    a = config_hash(load_config("tiny"))
    monkeypatch.setenv("SIGNGEN_DATA", "elsewhere")
    assert config_hash(load_config("tiny")) == a
    assert config_hash(load_config("tiny", ["render.width=64"])) != a


@pytest.mark.parametrize("override, message", [
    ("synthsign.num_unseen_signers=24", "synthsign: num_unseen_signers"),
    ("synthsign.num_signers=0", "synthsign.num_signers"),
    ("synthsign.language_weights=[1.0]", "equal length"),
    ("synthsign.held_out_sentence_fraction=0.0", "held_out_sentence_fraction > 0"),
    ("synthsign.held_out_sentence_fraction=0.9", "above the maximum"),
])
def test_impossible_synthsign_settings(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


@pytest.mark.parametrize("override, message", [
    ("video.sampling.overlap=8", "smaller than video.sampling.window"),
    ("video.sampling.window=16", "frame positions they were never trained on"),
    ("video.clip_length=40", "motion_max_seq_length"),
    ("video.condition_encoder.block_out_channels=[16,32]", "as many stages"),
    ("video.ema_decay=1.0", "above the maximum"),
])
def test_impossible_video_settings(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config("tiny", [override])


def test_frames_per_step_refuses_segments():
    with pytest.raises(ConfigError, match="frames_per_step > 1 needs max_segments 0"):
        load_config("tiny", ["translator.model.frames_per_step=2",
                             "translator.model.max_segments=8"])
    assert load_config("tiny", ["translator.model.frames_per_step=2"]) \
        .translator.model.frames_per_step == 2
