"""Generate sign language from text: a signing video and an SMPL-X avatar.

    python sample.py --text "..." [--lang TAG] [--gloss "..."] [--reference IMG | --signer ID]
                     [--seed N] [--steps N] [--fps N] [--avatar-only] [--model DIR] --out DIR
    python sample.py --batch jobs.jsonl --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from signgen.cli import ArgumentParser, run_cli
from signgen.config import DEFAULT_CONFIG, load_config
from signgen.errors import InvalidInputError, SignGenError


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(description="Text to sign language video and avatar.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="spoken-language text to sign")
    source.add_argument("--gloss", help="gloss sequence to sign instead of text, e.g. "
                                        "\"TOMORROW STORE I GO\" (fs-NAME is spelled)")
    source.add_argument("--batch", help="JSONL file of jobs (id, text, optional lang, "
                                        "reference, signer, seed, gloss)")
    parser.add_argument("--lang", help="target sign-language tag")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--reference", help="image of the signer to render")
    who.add_argument("--signer", help="id of a built-in signer (a translator with signer "
                                      "conditioning also signs in that signer's way)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=_positive_int, help="diffusion sampling steps")
    parser.add_argument("--fps", type=_positive_int, help="output frame rate")
    parser.add_argument("--avatar-only", action="store_true",
                        help="skip the video model; write the SMPL-X avatar outputs only")
    parser.add_argument("--gif", action="store_true",
                        help="also write preview.gif: the video beside the avatar, looping")
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo weights)")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help="config name in configs/ or a YAML path (default: %(default)s)")
    parser.add_argument("--out", default="outputs/sample", help="output folder")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    return parser


def default_model() -> Path:
    """The shipped demo pipeline: <assets>/pipeline (``python train.py --stage demo``)."""
    from signgen.paths import assets_dir, display_path

    return display_path(assets_dir() / "pipeline")


def _reference(args, model_dir: Path):
    """The signer's image: --reference, --signer (a shipped one), or the first shipped."""
    from PIL import Image, UnidentifiedImageError

    from signgen.pipelines.sign_gen import SIGNERS_FOLDER

    shipped = sorted((model_dir / SIGNERS_FOLDER).glob("*.png"))
    if args.reference:
        path = Path(args.reference)
    elif args.signer:
        path = model_dir / SIGNERS_FOLDER / f"{args.signer}.png"
        if not path.is_file():
            raise InvalidInputError(f"unknown signer {args.signer!r}; this model ships "
                                    f"{', '.join(p.stem for p in shipped) or 'none'}")
    elif shipped:
        path = shipped[0]
    else:
        raise InvalidInputError(f"{model_dir} ships no signer images; pass --reference IMG "
                                f"or --avatar-only")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, UnidentifiedImageError) as error:
        raise InvalidInputError(f"cannot read the reference image {path}: {error}") from None


def _signer_id(args, model_dir: Path) -> str | None:
    """Whom the signing is for: --signer, else the first shipped signer unless
    --reference gives an image of someone else (None: a signer the model does not know)."""
    from signgen.pipelines.sign_gen import SIGNERS_FOLDER

    if args.signer or args.reference:
        return args.signer
    shipped = sorted((model_dir / SIGNERS_FOLDER).glob("*.png"))
    return shipped[0].stem if shipped else None


def generate_one(pipe, body, cfg, args, out_dir: Path, model_dir: Path,
                 model_version: str) -> list[str]:
    """Run the engine once and write every output into ``out_dir``; returns notices.
    ``model_version``: the translator's weights hash, recorded in tokens.json."""
    from signgen.data.synthsign.signers import signing_camera
    from signgen.exports import (
        contact_sheet,
        write_gif,
        write_json,
        write_mp4,
        write_png,
        write_pose,
        write_smplx_npz,
    )

    decoding = {**dataclasses.asdict(cfg.translator.decoding),
                "signer": _signer_id(args, model_dir)}
    fps = args.fps or cfg.data.fps
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.avatar_only:
        result = _avatar_only(pipe, body, args, decoding, out_dir / "avatar.mp4", fps)
        frames = None
    else:
        reference = _reference(args, model_dir)
        sampling = cfg.video.sampling
        out = pipe(args.text if args.gloss is None else None, args.lang, glosses=args.gloss,
                   reference_image=reference, seed=args.seed,
                   num_inference_steps=args.steps or sampling.num_inference_steps,
                   guidance_scale=sampling.guidance_scale, window=sampling.window,
                   overlap=sampling.overlap, window_batch=sampling.window_batch or None,
                   precision=sampling.precision, **decoding)
        start = time.perf_counter()
        poses = (out.smplx_pose[i:i + 32] for i in range(0, len(out.smplx_pose), 32))
        avatar, joints = _render_avatar(body, poses, pipe.frame_size,
                                        out_dir / "avatar.mp4", fps)
        out.timings["render_avatar"] = time.perf_counter() - start  # with avatar.mp4
        frames = out.frames
        result = {"tokens": out.tokens, "smplx_pose": out.smplx_pose, "avatar": avatar,
                  "joints": joints, "notices": out.notices, "timings": out.timings}
    avatar, joints = result["avatar"], result["joints"]
    timings = result["timings"]
    start = time.perf_counter()
    height, width = pipe.frame_size
    write_smplx_npz(out_dir / "smplx.npz", result["smplx_pose"], fps, gender=cfg.body.gender,
                    betas=np.zeros(body.num_betas, np.float32))
    write_pose(out_dir / "pose.pose", joints, signing_camera(width, height), fps)
    rows = [avatar]
    if frames is not None:
        write_mp4(out_dir / "video.mp4", frames, fps)
        rows.insert(0, frames)
    write_png(out_dir / "preview.png", contact_sheet(rows))
    if getattr(args, "gif", False):  # --gif (batch jobs too)
        write_gif(out_dir / "preview.gif", np.concatenate(rows, axis=2), fps)
    timings["write_files"] = time.perf_counter() - start
    write_json(out_dir / "tokens.json", {
        "text": args.text, "gloss": args.gloss, "language": args.lang or pipe.languages[0],
        "seed": args.seed, "fps": fps, "model": str(model_dir),
        "model_version": model_version, "signer": decoding["signer"],
        # tokens of the mirror image: a signer the translator learnt mirrored (canonical
        # handedness); the pose, avatar and video are mirrored back
        "tokens_mirrored": pipe.translator.mirrors(decoding["signer"]),
        "tokens": result["tokens"].tolist(), "notices": result["notices"],
        "timings": {k: round(v, 3) for k, v in timings.items()}})
    return result["notices"]


def _avatar_only(pipe, body, args, decoding: dict, mp4_path: Path, fps: float) -> dict:
    """--avatar-only, streamed: the translator's chunks go to :func:`_render_avatar` as
    they are decoded, so translating, posing, rendering and encoding overlap and
    ``timings`` has one entry for all of them, ``translate_and_render_avatar``. Returns
    tokens (T,S), smplx_pose (T,165), joints (T,144,3), avatar (T,H,W,3) uint8, notices,
    timings."""
    start = time.perf_counter()
    notices, stream = pipe.stream_avatar(args.text if args.gloss is None else None,
                                         args.lang, glosses=args.gloss, seed=args.seed,
                                         **decoding)
    chunks = []

    def poses():
        for chunk in stream:
            chunks.append(chunk)
            yield chunk.smplx_pose

    avatar, joints = _render_avatar(body, poses(), pipe.frame_size, mp4_path, fps)
    return {"tokens": np.concatenate([c.tokens for c in chunks]),
            "smplx_pose": np.concatenate([c.smplx_pose for c in chunks]),
            "avatar": avatar, "joints": joints, "notices": notices,
            "timings": {"translate_and_render_avatar": time.perf_counter() - start}}


def _render_avatar(body, poses, size: tuple[int, int], mp4_path: Path,
                   fps: float) -> tuple[np.ndarray, np.ndarray]:
    """Chunks of SMPL-X poses (n,165) -> the avatar frames (T,H,W,3) uint8 and joints
    (T,144,3), written to ``mp4_path`` as they come: chunk k is posed and rendered on the
    avatar worker while the caller makes chunk k+1, and encoded by ffmpeg (another
    process) after."""
    from signgen.exports import Mp4Writer
    from signgen.render.avatar import AvatarRenderer

    frames, joints = [], []

    def collect(rendering) -> None:
        chunk_frames, chunk_joints = rendering.result()
        frames.append(chunk_frames)
        joints.append(chunk_joints)
        writer.append(chunk_frames)

    with AvatarRenderer(body, *size) as renderer, Mp4Writer(mp4_path, fps) as writer:
        rendering = None
        for chunk in poses:
            submitted = renderer.submit_poses(chunk)
            if rendering is not None:
                collect(rendering)
            rendering = submitted
        collect(rendering)
    return np.concatenate(frames), np.concatenate(joints)


def check_output_folder(out_dir: Path) -> None:
    """Fails early (before any model loads) when ``out_dir`` cannot become a folder we
    can write: it or one of its parents is a file, or the nearest existing parent is not
    writable."""
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--out {out_dir} is a file, not a folder")
    parent = out_dir
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise InvalidInputError(f"--out {out_dir}: {parent} is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InvalidInputError(f"--out {out_dir}: {parent} is not writable")


def _temporary_folder(out_dir: Path) -> Path:
    """A fresh ``.tmp-<name>-<pid>`` folder beside ``out_dir`` (same filesystem, so the
    finished files move by rename)."""
    tmp = out_dir.absolute().parent / f".tmp-{out_dir.absolute().name}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir(parents=True)
    except OSError as error:
        raise InvalidInputError(f"--out {out_dir}: cannot write there: {error}") from None
    return tmp


DONE_MARKER = ".complete"
FAILURES_FILE = "failures.jsonl"
JOB_KEYS = {"id", "text", "gloss", "lang", "reference", "signer", "seed"}
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def read_jobs(path: Path) -> tuple[list[dict], list[dict]]:
    """jobs.jsonl -> (valid jobs in file order, failures of invalid lines). A job is a JSON
    object with ``id`` (letters, digits, '.', '_', '-'; no path) and ``text`` or
    ``gloss``; optional ``lang``, ``reference``, ``signer``, ``seed``."""
    if not path.is_file():
        raise InvalidInputError(f"no jobs file {path}")
    jobs, failures, seen = [], [], set()
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            job = json.loads(line)
        except json.JSONDecodeError as error:
            failures.append({"line": number, "error": f"not JSON: {error.msg}"})
            continue
        problem = None
        if not isinstance(job, dict):
            problem = "a job must be a JSON object"
        elif not isinstance(job.get("id"), str) or not SAFE_ID.fullmatch(job["id"]):
            problem = ("id must be 1-100 letters, digits, '.', '_' or '-', starting with a "
                       "letter or digit")
        elif job["id"] in seen:
            problem = f"duplicate id {job['id']!r}"
        elif set(job) - JOB_KEYS:
            problem = f"unknown keys {sorted(set(job) - JOB_KEYS)}"
        elif (job.get("text") is None) == (job.get("gloss") is None):
            problem = "give text or gloss"
        elif not isinstance(job.get("seed", 0), int):
            problem = "seed must be an integer"
        if problem:
            failures.append({"line": number, "id": job.get("id") if isinstance(job, dict)
                             else None, "error": problem})
            continue
        seen.add(job["id"])
        jobs.append(job)
    return jobs, failures


def _record_failure(out_root: Path, failure: dict) -> None:
    """One line per failure, appended in a single write (ranks may share the file)."""
    with open(out_root / FAILURES_FILE, "a") as f:
        f.write(json.dumps(failure) + "\n")


def run_batch(pipe, body, cfg, args, model_dir: Path, model_version: str) -> dict:
    """Render every job of ``args.batch`` into ``args.out/<id>/``; a finished item (its
    folder holds ``.complete``) is skipped, a failing one is recorded in failures.jsonl.
    Under torchrun / accelerate launch (RANK, WORLD_SIZE) each rank takes jobs
    rank, rank + WORLD_SIZE, ... of the file."""
    from tqdm import tqdm

    from signgen.memory import steady_heap

    steady_heap()  # a long job's memory stays flat (signgen/memory.py)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    out_root = Path(args.out)
    out_root.mkdir(parents=True, exist_ok=True)
    jobs, invalid = read_jobs(Path(args.batch))
    if rank == 0:
        for failure in invalid:
            _record_failure(out_root, failure)
    counts = {"done": 0, "skipped": 0, "failed": len(invalid) if rank == 0 else 0}
    for job in tqdm(jobs[rank::world], desc=f"rank {rank}" if world > 1 else "jobs",
                    unit="item"):
        final = out_root / job["id"]
        # Temporary folders of this job (".tmp-<id>-<pid>", not another id's that starts
        # with this one) left by a killed run; only this rank owns the job.
        prefix = f".tmp-{job['id']}-"
        for stale in out_root.glob(prefix + "*"):
            if stale.name[len(prefix):].isdigit():
                shutil.rmtree(stale, ignore_errors=True)
        if (final / DONE_MARKER).is_file():
            counts["skipped"] += 1
            continue
        tmp = out_root / f".tmp-{job['id']}-{os.getpid()}"
        item_args = argparse.Namespace(**{**vars(args), "text": job.get("text"),
                                          "gloss": job.get("gloss"), "lang": job.get("lang"),
                                          "reference": job.get("reference"),
                                          "signer": job.get("signer"),
                                          "seed": job.get("seed", args.seed)})
        try:
            generate_one(pipe, body, cfg, item_args, tmp, model_dir, model_version)
            (tmp / DONE_MARKER).write_text("")
            shutil.rmtree(final, ignore_errors=True)  # an unfinished earlier attempt
            tmp.rename(final)
            counts["done"] += 1
        except Exception as error:  # noqa: BLE001 - one item's failure never stops the job
            shutil.rmtree(tmp, ignore_errors=True)
            message = str(error) if isinstance(error, SignGenError) else \
                f"{type(error).__name__}: {error}"
            _record_failure(out_root, {"id": job["id"], "error": message})
            counts["failed"] += 1
    print(f"rank {rank}: " if world > 1 else "", end="")
    print(f"{counts['done']} done, {counts['skipped']} already finished, "
          f"{counts['failed']} failed" + (f" (see {out_root / FAILURES_FILE})"
                                          if counts["failed"] else ""))
    return counts


def cli(argv: list[str] | None = None) -> int:
    from signgen.body.model import BodyModel
    from signgen.exports import warm_up as warm_up_writer
    from signgen.paths import weights_hash
    from signgen.pipelines.sign_gen import SignGenPipeline
    from signgen.render.mesh_renderer import warm_up as warm_up_renderer

    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)  # fail early on a bad config
    if args.text is not None and args.gloss is not None:
        raise InvalidInputError("give --text or --gloss, not both")
    model_dir = Path(args.model) if args.model else default_model()
    if not (model_dir / "model_index.json").is_file():
        raise InvalidInputError(f"no signgen pipeline in {model_dir}" + (
            "; rebuild the shipped demo with python train.py --stage demo, or pass --model DIR"
            if not args.model else ""))
    if args.batch and not Path(args.batch).is_file():
        raise InvalidInputError(f"no jobs file {args.batch}")
    out_dir = Path(args.out)
    check_output_folder(out_dir)
    # The avatar renderer's GL context is made, and the mp4 writer's modules load, while
    # the models load.
    warm_up_renderer()
    warm_up_writer()
    pipe = SignGenPipeline.from_pretrained(model_dir)
    pipe.set_progress_bar_config(disable=bool(args.batch))
    model_version = weights_hash(model_dir / "translator")  # once, not per batch item
    body = BodyModel(cfg.body.model_dir, cfg.body.gender, cfg.body.num_betas,
                     cfg.body.num_expression).eval()
    if args.batch:
        counts = run_batch(pipe, body, cfg, args, model_dir, model_version)
        return 1 if counts["failed"] else 0
    # Rendered into a temporary sibling folder, then moved: a failure or a kill leaves no
    # partial outputs in --out.
    tmp = _temporary_folder(out_dir)
    try:
        notices = generate_one(pipe, body, cfg, args, tmp, model_dir, model_version)
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in sorted(tmp.iterdir()):
            os.replace(path, out_dir / path.name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    for notice in notices:
        print(f"notice: {notice}", file=sys.stderr)
    print(f"wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(cli))
