"""Assemble one ``SignGenPipeline`` folder from the exported stages, checking that they
belong together (each export records the hash of what it was trained on):

- the FSQ autoencoder's ``fsq.json`` names the stage-I condition encoder it compresses;
- the translator's ``translator.json`` names the FSQ checkpoint its tokens come from.

    python -m signgen.pipelines.assemble --video outputs/tiny/video_temporal/model \\
        --fsq outputs/tiny/fsq/model --translator outputs/tiny/translator/model \\
        --signers data/synthsign/references --out assets/pipeline

``--signers``: a folder of ``<id>.png`` reference images copied into ``signers/`` (the
signers ``sample.py --signer`` offers); ``--signer-ids`` picks some of them. The folder is
written under a temporary name and renamed when complete.

``--storage-dtype float16`` stores the weights at half size (the shipped demo does, to
stay small); ``SignGenPipeline.from_pretrained`` computes in float32 whatever the stored
dtype, so only the weights' rounding to float16 differs from the float32 stages.

A translator trained on the tokens of an assembled pipeline's own FSQ autoencoder (say,
tokens made with the shipped ``assets/pipeline/fsq``) replaces that pipeline's translator
without the other stages' export folders:

    python -m signgen.pipelines.assemble --base assets/pipeline \
        --translator outputs/trial/translator/model --out outputs/pipeline-trial

With ``--fsq`` as well, stages II and III are both replaced: an FSQ autoencoder trained on
the base pipeline's condition encoder (``fsq.video_model=assets/pipeline``) and a
translator trained on that FSQ's tokens.

``--video`` with ``--base`` replaces the renderer (VAE, UNet, reference encoder,
scheduler) by a stage-I export trained around the base's own condition encoder
(``video.condition_encoder.pretrained_path=assets/pipeline/condition_encoder``): the
embedding, hence the FSQ autoencoder and translator, stay as they are. A video model with
any other condition encoder (compared weight by weight) is refused.

``--pose-decoder`` adds (or replaces) the token pose decoder
(``python train.py --stage pose_decoder``): the avatar's pose read from the tokens with
temporal context. Its ``pose_decoder.json`` names the FSQ checkpoint whose tokens it
read; any other is refused. A new FSQ autoencoder without a new pose decoder drops the
base's (it read the old tokens).
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

from signgen.errors import SignGenError
from signgen.paths import weights_hash


def check_stages(video: Path, fsq: Path, translator: Path) -> None:
    """Raise SignGenError when the exports were not trained on each other."""
    for folder, marker, stage in ((video, "model_index.json", "video"),
                                  (fsq, "fsq.json", "fsq"),
                                  (translator, "translator.json", "translator")):
        if not (folder / marker).is_file():
            raise SignGenError(f"{folder} is not an exported {stage} stage (no {marker}); "
                               f"train it with python train.py --stage {stage}")
    fsq_info = json.loads((fsq / "fsq.json").read_text())
    encoder = weights_hash(video / "condition_encoder")
    if fsq_info["condition_encoder_hash"] != encoder:
        raise SignGenError(f"the FSQ autoencoder in {fsq} was trained on condition encoder "
                           f"{fsq_info['condition_encoder_hash']}, the video model in {video} "
                           f"has {encoder}")
    translator_info = json.loads((translator / "translator.json").read_text())
    fsq_id = weights_hash(fsq)
    if translator_info["fsq_id"] != fsq_id:
        raise SignGenError(f"the translator in {translator} learnt the tokens of FSQ "
                           f"checkpoint {translator_info['fsq_id']}, not of {fsq} ({fsq_id})")


def check_pose_decoder(pose_decoder: Path, fsq_ids: set[str]) -> None:
    """Raise SignGenError unless ``pose_decoder`` is an exported token pose decoder that
    read the tokens of an FSQ checkpoint in ``fsq_ids`` (weights hashes)."""
    from signgen.training.tasks.pose_decoder import INFO_FILE

    if not (pose_decoder / INFO_FILE).is_file():
        raise SignGenError(f"{pose_decoder} is not an exported pose decoder (no {INFO_FILE}); "
                           f"train it with python train.py --stage pose_decoder")
    read = json.loads((pose_decoder / INFO_FILE).read_text())["fsq_id"]
    if read not in fsq_ids:
        raise SignGenError(f"the pose decoder in {pose_decoder} read the tokens of FSQ "
                           f"checkpoint {read}, this pipeline's FSQ is "
                           f"{' / '.join(sorted(fsq_ids))}")


STORAGE_DTYPES = ("float32", "float16", "bfloat16")
DEMO_FILE = "demo.json"


def stage_summary(model_dir: Path) -> dict:
    """What ``demo.json`` records of one exported stage: steps, seed, config hash,
    command, git commit and final evaluation, from its ``training.json``."""
    info = json.loads((Path(model_dir) / "training.json").read_text())
    return {k: info.get(k) for k in ("steps", "seed", "config_hash", "command", "git_commit",
                                     "eval")}


# what --video replaces (condition_adapter: removed where the new renderer has none)
VIDEO_PARTS = ("vae", "unet", "reference_encoder", "scheduler", "condition_adapter")
RENDERER_STAGES = ("vae", "vae_decoder", "video_frames", "video_temporal",  # their training
                   "render_decoder")


def same_condition_encoder(video: Path, base: Path) -> bool:
    """Whether the stage-I export ``video`` holds ``base``'s condition encoder: the same
    config and, rounded to the dtype ``base`` stores, the same weights."""
    import torch

    from signgen.loading import load_pretrained
    from signgen.models.condition_encoder import MultiConditionEncoder

    ours = load_pretrained(MultiConditionEncoder, base / "condition_encoder")
    theirs = load_pretrained(MultiConditionEncoder, video / "condition_encoder")

    def settings(model):
        return {k: v for k, v in model.config.items() if not k.startswith("_")}

    if settings(ours) != settings(theirs):
        return False
    mine, other = ours.state_dict(), theirs.state_dict()
    return mine.keys() == other.keys() and all(
        torch.equal(mine[k], other[k].to(mine[k].dtype)) for k in mine)


def replace_renderer(video: Path, folder: Path, dtype) -> None:
    """Save the renderer parts (``VIDEO_PARTS``) of the stage-I export ``video`` into
    the pipeline folder ``folder`` (weights as ``dtype``) and name them in its
    ``model_index.json``."""
    from diffusers.utils import logging as diffusers_logging

    from signgen.loading import load_pretrained
    from signgen.pipelines.sign_video import SignVideoPipeline

    parts = load_pretrained(SignVideoPipeline, video)
    index = json.loads((folder / "model_index.json").read_text())
    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # no "keep in float32" notice per component
    try:
        for name in VIDEO_PARTS:
            part = getattr(parts, name)
            if part is None:  # an optional part the new renderer lacks
                shutil.rmtree(folder / name, ignore_errors=True)
                index[name] = [None, None]
                continue
            if name != "scheduler":
                part = part.to(dtype=dtype)
            part.save_pretrained(folder / name)
            index[name] = [type(part).__module__.split(".")[0]
                           if type(part).__module__.startswith("diffusers")
                           else type(part).__module__, type(part).__name__]
    finally:
        diffusers_logging.set_verbosity(level)
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True)
                                             + "\n")


def save_pose_decoder(pose_decoder: Path | None, folder: Path, dtype) -> None:
    """Save the exported token pose decoder ``pose_decoder`` into the pipeline folder
    ``folder`` (weights as ``dtype``) and name it in its ``model_index.json``; None
    removes the folder's pose decoder."""
    from signgen.loading import load_pretrained
    from signgen.models.token_pose_decoder import TokenPoseDecoder

    index = json.loads((folder / "model_index.json").read_text())
    shutil.rmtree(folder / "pose_decoder", ignore_errors=True)
    if pose_decoder is None:
        index["pose_decoder"] = [None, None]
    else:
        load_pretrained(TokenPoseDecoder, pose_decoder).to(dtype=dtype).save_pretrained(
            folder / "pose_decoder")
        index["pose_decoder"] = [TokenPoseDecoder.__module__, TokenPoseDecoder.__name__]
    (folder / "model_index.json").write_text(json.dumps(index, indent=2, sort_keys=True)
                                             + "\n")


def video_stage_summaries(video: Path) -> dict:
    """``demo.json``'s entries for a stage-I export, from the ``training.json`` files that
    exist: its own (``video_temporal`` or ``video_frames``, by its phase), phase 1's (a
    phase-2 export's ``video.json`` names it in ``frames_model``) and its VAE's (``vae``,
    or ``vae_decoder`` for a fine-tuned decoder); a ``render_decoder`` export's own and
    its video model's (``video_temporal``)."""
    summaries = {}
    info = json.loads((video / "video.json").read_text()) if (video / "video.json").is_file() \
        else {}
    tuned = info.get("render_decoder")  # a render_decoder export: its video model's too
    if tuned and (Path(tuned["video_model"]) / "training.json").is_file():
        summaries["video_temporal"] = stage_summary(Path(tuned["video_model"]))
    if (video / "training.json").is_file():
        phase = "render_decoder" if tuned else \
            "video_temporal" if info.get("phase") == 2 else "video_frames"
        summaries[phase] = stage_summary(video)
    frames = Path(info["frames_model"]) if info.get("frames_model") else None
    if frames is not None and (frames / "training.json").is_file():
        summaries["video_frames"] = stage_summary(frames)
    vae = Path(info["vae"]) if info.get("vae") else None
    if vae is not None and (vae / "training.json").is_file():
        stage = json.loads((vae / "training.json").read_text()).get("stage", "vae")
        summaries[stage if stage in ("vae", "vae_decoder") else "vae"] = stage_summary(vae)
    return summaries


def replace_stages(base: Path, translator: Path | None, out: Path,
                   fsq: Path | None = None, command: str | None = None,
                   video: Path | None = None, pose_decoder: Path | None = None) -> Path:
    """Write ``out``: the pipeline folder ``base`` with the exported translator (and its
    text tokenizer) of ``translator``, if given, the exported FSQ autoencoder ``fsq`` and,
    if given, the renderer of the stage-I export ``video`` (``VIDEO_PARTS``), stored in
    ``base``'s storage dtype, and the token pose decoder ``pose_decoder``, if given;
    ``base``'s ``demo.json`` (if any) gets the new stages'
    training summaries and an ``updates`` entry (``command``, git commit).
    Raises SignGenError unless that translator learnt the tokens of the FSQ weights it
    will decode through (``fsq``'s, else ``base``'s), ``fsq`` was trained on ``base``'s
    condition encoder and ``video`` holds that condition encoder."""
    import torch

    from signgen.data.text_tokenizer import TextTokenizer
    from signgen.loading import load_pretrained
    from signgen.models.fsq_autoencoder import FSQAutoencoder
    from signgen.models.translator import SignTranslator
    from signgen.pipelines.sign_gen import SignGenPipeline

    base, out = Path(base), Path(out)
    if translator is None and fsq is None and video is None and pose_decoder is None:
        raise SignGenError("nothing to replace: give a translator, an FSQ autoencoder, "
                           "a video model and/or a pose decoder")
    if not (base / "stages.json").is_file() or not (base / "fsq").is_dir():
        raise SignGenError(f"{base} is not an assembled signgen pipeline (no stages.json)")
    if video is not None:
        video = Path(video)
        if not (video / "model_index.json").is_file():
            raise SignGenError(f"{video} is not an exported video model (no "
                               f"model_index.json); train it with python train.py --stage video")
        if not same_condition_encoder(video, base):
            raise SignGenError(
                f"the video model in {video} has another condition encoder than {base}: its "
                f"FSQ autoencoder and translator would not fit; train the video model with "
                f"video.condition_encoder.pretrained_path={base / 'condition_encoder'}")
    if translator is None and fsq is not None:
        raise SignGenError("a new FSQ autoencoder needs a translator trained on its tokens")
    if translator is not None:
        translator = Path(translator)
        if not (translator / "translator.json").is_file():
            raise SignGenError(f"{translator} is not an exported translator (no "
                               f"translator.json); train it with python train.py --stage "
                               f"translator")
    if fsq is not None:
        fsq = Path(fsq)
        if not (fsq / "fsq.json").is_file():
            raise SignGenError(f"{fsq} is not an exported FSQ autoencoder (no fsq.json); "
                               f"train it with python train.py --stage fsq")
        trained_on = json.loads((fsq / "fsq.json").read_text())["condition_encoder_hash"]
        encoder = weights_hash(base / "condition_encoder")
        if trained_on != encoder:
            raise SignGenError(f"the FSQ autoencoder in {fsq} was trained on condition "
                               f"encoder {trained_on}, the pipeline in {base} has {encoder}: "
                               f"train it with fsq.video_model={base}")
    stages = json.loads((base / "stages.json").read_text())
    if translator is not None:
        fsq_dir = fsq if fsq is not None else base / "fsq"
        fsq_ids = {weights_hash(fsq_dir)}
        if fsq is None and stages.get("fsq_id"):
            # The checkpoint the base's FSQ was stored from: a float16 copy hashes apart.
            fsq_ids.add(stages["fsq_id"])
        learnt = json.loads((translator / "translator.json").read_text())["fsq_id"]
        if learnt not in fsq_ids:
            raise SignGenError(f"the translator in {translator} learnt the tokens of FSQ "
                               f"checkpoint {learnt}, not of {fsq_dir} "
                               f"({' / '.join(sorted(fsq_ids))})")
    if pose_decoder is not None:
        pose_decoder = Path(pose_decoder)
        check_pose_decoder(pose_decoder, {weights_hash(fsq)} if fsq is not None else
                           {weights_hash(base / "fsq"), stages.get("fsq_id")} - {None})
    dtype = getattr(torch, stages.get("storage_dtype", "float32"))
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    # a new FSQ's tokens are not the ones the base's pose decoder read: it goes too
    drop_pose_decoder = fsq is not None and (base / "pose_decoder").is_dir()
    replaced = (*(("video",) if video is not None else ()),
                *(("fsq",) if fsq is not None else ()),
                *(("translator",) if translator is not None else ()),
                *(("pose_decoder",) if pose_decoder is not None or drop_pose_decoder else ()))
    folders = {"video": VIDEO_PARTS, "fsq": ("fsq",),
               "translator": ("translator", "text_tokenizer"), "pose_decoder": ("pose_decoder",)}
    shutil.copytree(base, tmp, ignore=shutil.ignore_patterns(
        *(name for stage in replaced for name in folders[stage])))
    if pose_decoder is not None or drop_pose_decoder:
        save_pose_decoder(pose_decoder, tmp, dtype)
        stages["pose_decoder"] = str(pose_decoder) if pose_decoder is not None else None
        if drop_pose_decoder and pose_decoder is None:
            print(f"note: the base's pose decoder read the old FSQ's tokens; the new pipeline "
                  f"has none (train one with python train.py --stage pose_decoder "
                  f"pose_decoder.fsq_model={fsq})")
    if translator is not None:
        load_pretrained(SignTranslator, translator).to(dtype).save_pretrained(
            tmp / "translator")
        TextTokenizer.load(translator).save(tmp / "text_tokenizer")
        stages["translator"] = str(translator)
    if fsq is not None:
        load_pretrained(FSQAutoencoder, fsq).to(dtype).save_pretrained(tmp / "fsq")
        stages["fsq"], stages["fsq_id"] = str(fsq), weights_hash(fsq)
    if video is not None:
        replace_renderer(video, tmp, dtype)
        stages["video"] = str(video)
        stages["video_json"] = (json.loads((video / "video.json").read_text())
                                if (video / "video.json").is_file() else None)
    stages["base"] = str(base)
    if (tmp / DEMO_FILE).is_file():  # the base's provenance, with the replaced stages'
        from signgen.provenance import git_commit

        demo = json.loads((tmp / DEMO_FILE).read_text())
        if drop_pose_decoder and pose_decoder is None:
            demo.get("stages", {}).pop("pose_decoder", None)
        for stage, folder in (("fsq", fsq), ("translator", translator),
                              ("pose_decoder", pose_decoder)):
            if folder is not None and (folder / "training.json").is_file():
                demo.setdefault("stages", {})[stage] = stage_summary(folder)
        if video is not None:  # the base's renderer stages no longer apply
            demo["stages"] = {k: v for k, v in demo.get("stages", {}).items()
                              if k not in RENDERER_STAGES}
            demo["stages"].update(video_stage_summaries(video))
        # and how it came to be: every stage replacement, oldest first
        demo.setdefault("updates", []).append({
            "command": command, "replaced": list(replaced), "git_commit": git_commit()})
        (tmp / DEMO_FILE).write_text(json.dumps(demo, indent=2) + "\n")
    (tmp / "stages.json").write_text(json.dumps(stages, indent=2) + "\n")
    SignGenPipeline.from_pretrained(tmp)  # loads: its parts belong together
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def assemble(video: Path, fsq: Path, translator: Path, out: Path,
             signers: Path | None = None, signer_ids: list[str] | None = None,
             storage_dtype: str = "float32", sampling: dict | None = None,
             pose_decoder: Path | None = None) -> Path:
    """Write the pipeline folder ``out`` from the three exported stages and, if given, a
    token pose decoder (weights stored as ``storage_dtype``); returns ``out``.
    ``sampling`` (the ``video.sampling`` keys) is recorded in ``stages.json`` as the
    pipeline's sampling settings; without it, the settings the video model was exported
    with apply (its ``video.json``)."""
    import torch

    from signgen.data.text_tokenizer import TextTokenizer
    from signgen.loading import load_pretrained
    from signgen.models.fsq_autoencoder import FSQAutoencoder
    from signgen.models.translator import SignTranslator
    from signgen.pipelines.sign_gen import SIGNERS_FOLDER, SignGenPipeline
    from signgen.pipelines.sign_video import SignVideoPipeline

    if storage_dtype not in STORAGE_DTYPES:
        raise SignGenError(f"storage dtype {storage_dtype!r} is not one of {STORAGE_DTYPES}")
    video, fsq, translator, out = map(Path, (video, fsq, translator, out))
    check_stages(video, fsq, translator)
    if pose_decoder is not None:
        from signgen.models.token_pose_decoder import TokenPoseDecoder

        pose_decoder = Path(pose_decoder)
        check_pose_decoder(pose_decoder, {weights_hash(fsq)})
    parts = load_pretrained(SignVideoPipeline, video)
    pipe = SignGenPipeline(translator=load_pretrained(SignTranslator, translator),
                           fsq=load_pretrained(FSQAutoencoder, fsq), vae=parts.vae,
                           unet=parts.unet, condition_encoder=parts.condition_encoder,
                           reference_encoder=parts.reference_encoder,
                           scheduler=parts.scheduler,
                           text_tokenizer=TextTokenizer.load(translator),
                           condition_adapter=parts.condition_adapter,
                           pose_decoder=None if pose_decoder is None else
                           load_pretrained(TokenPoseDecoder, pose_decoder))
    tmp = out.with_name(f".tmp-{out.name}")
    shutil.rmtree(tmp, ignore_errors=True)
    from diffusers.utils import logging as diffusers_logging

    level = diffusers_logging.get_verbosity()
    diffusers_logging.set_verbosity_error()  # no "keep in float32" notice per component
    try:
        for module in (pipe.translator, pipe.fsq, pipe.vae, pipe.unet, pipe.condition_encoder,
                       pipe.reference_encoder, pipe.condition_adapter, pipe.pose_decoder):
            if module is not None:
                module.to(dtype=getattr(torch, storage_dtype))
    finally:
        diffusers_logging.set_verbosity(level)
    pipe.save_pretrained(tmp)
    if signers is not None:
        images = sorted(Path(signers).glob("*.png"))
        if signer_ids:
            missing = set(signer_ids) - {p.stem for p in images}
            if missing:
                raise SignGenError(f"no reference image for signers {sorted(missing)} in "
                                   f"{signers}")
            images = [p for p in images if p.stem in set(signer_ids)]
        (tmp / SIGNERS_FOLDER).mkdir()
        for image in images:
            shutil.copy2(image, tmp / SIGNERS_FOLDER / image.name)
    sources = {"video": str(video), "fsq": str(fsq), "fsq_id": weights_hash(fsq),
               "translator": str(translator),
               "pose_decoder": None if pose_decoder is None else str(pose_decoder),
               "storage_dtype": storage_dtype,
               "video_json": json.loads((video / "video.json").read_text())
               if (video / "video.json").is_file() else None}
    if sampling is not None:
        sources["sampling"] = dict(sampling)
    (tmp / "stages.json").write_text(json.dumps(sources, indent=2) + "\n")
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    return out


def main(argv: list[str] | None = None) -> int:
    from signgen.cli import ArgumentParser

    parser = ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--video", help="exported stage-I pipeline folder")
    parser.add_argument("--fsq", help="exported FSQ autoencoder folder")
    parser.add_argument("--base", help="an assembled pipeline whose stages the given ones "
                        "replace: --translator (and --fsq with it) and/or --video (a "
                        "renderer trained on the base's condition encoder)")
    parser.add_argument("--translator", help="exported translator folder")
    parser.add_argument("--pose-decoder", help="exported token pose decoder folder")
    parser.add_argument("--signers", help="folder of <id>.png reference images to ship")
    parser.add_argument("--signer-ids", nargs="*", help="ship only these signers")
    parser.add_argument("--storage-dtype", default="float32", choices=STORAGE_DTYPES,
                        help="dtype the weights are stored in (computation is float32)")
    parser.add_argument("--out", required=True, help="the pipeline folder to write")
    args = parser.parse_args(argv)
    if args.base:
        if args.signers:
            parser.error("--base keeps the base pipeline's signers")
        if not (args.translator or args.video or args.pose_decoder):
            parser.error("--base needs --translator, --video and/or --pose-decoder")
        command = " ".join(["python -m signgen.pipelines.assemble",
                            *(sys.argv[1:] if argv is None else argv)])
        out = replace_stages(Path(args.base),
                             Path(args.translator) if args.translator else None,
                             Path(args.out), Path(args.fsq) if args.fsq else None,
                             command=command,
                             video=Path(args.video) if args.video else None,
                             pose_decoder=Path(args.pose_decoder) if args.pose_decoder
                             else None)
        print(f"pipeline -> {out}")
        return 0
    if not (args.video and args.fsq and args.translator):
        parser.error("--video, --fsq and --translator are required (or --base)")
    out = assemble(Path(args.video), Path(args.fsq), Path(args.translator), Path(args.out),
                   Path(args.signers) if args.signers else None, args.signer_ids,
                   args.storage_dtype,
                   pose_decoder=Path(args.pose_decoder) if args.pose_decoder else None)
    print(f"pipeline -> {out}")
    return 0


if __name__ == "__main__":
    from signgen.cli import run_cli

    sys.exit(run_cli(main))
