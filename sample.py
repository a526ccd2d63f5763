"""Generate sign language from text: a signing video and an SMPL-X avatar.

    python sample.py --text "..." [--lang TAG] [--gloss "..."] [--reference IMG | --signer ID]
                     [--seed N] [--steps N] [--fps N] [--avatar-only] [--model DIR] --out DIR
    python sample.py --batch jobs.jsonl --out DIR
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from signgen.cli import NotBuiltYetError, run_cli
from signgen.config import DEFAULT_CONFIG, load_config
from signgen.errors import InvalidInputError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Text to sign language video and avatar.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="spoken-language text to sign")
    source.add_argument("--gloss", help="gloss sequence to sign instead of text, e.g. "
                                        "\"TOMORROW STORE I GO\" (fs-NAME is spelled)")
    source.add_argument("--batch", help="JSONL file of jobs (id, text, optional lang, "
                                        "reference, seed, gloss)")
    parser.add_argument("--lang", help="target sign-language tag")
    who = parser.add_mutually_exclusive_group()
    who.add_argument("--reference", help="image of the signer to render")
    who.add_argument("--signer", help="id of a built-in signer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, help="diffusion sampling steps")
    parser.add_argument("--fps", type=int, help="output frame rate")
    parser.add_argument("--avatar-only", action="store_true",
                        help="skip the video model; write the SMPL-X avatar outputs only")
    parser.add_argument("--model", help="pipeline folder (default: the shipped demo weights)")
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help="config name in configs/ or a YAML path (default: %(default)s)")
    parser.add_argument("--out", default="outputs/sample", help="output folder")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="config overrides")
    return parser


DEFAULT_MODEL = Path("assets") / "pipeline"
SIGNERS_FOLDER = "signers"  # reference images shipped with a pipeline: <id>.png


def _reference(args, model_dir: Path):
    """The signer's image: --reference, --signer (a shipped one), or the first shipped."""
    from PIL import Image, UnidentifiedImageError

    if args.reference:
        try:
            with Image.open(args.reference) as image:
                return image.convert("RGB")
        except (OSError, UnidentifiedImageError) as error:
            raise InvalidInputError(f"cannot read the reference image {args.reference}: "
                                    f"{error}") from None
    shipped = sorted((model_dir / SIGNERS_FOLDER).glob("*.png"))
    if args.signer:
        path = model_dir / SIGNERS_FOLDER / f"{args.signer}.png"
        if not path.is_file():
            raise InvalidInputError(f"unknown signer {args.signer!r}; this model ships "
                                    f"{', '.join(p.stem for p in shipped) or 'none'}")
        return Image.open(path).convert("RGB")
    if not shipped:
        raise InvalidInputError(f"{model_dir} ships no signer images; pass --reference IMG "
                                f"or --avatar-only")
    return Image.open(shipped[0]).convert("RGB")


def generate_one(pipe, body, cfg, args, out_dir: Path, model_dir: Path) -> list[str]:
    """Run the engine once and write every output into ``out_dir``; returns notices."""
    from signgen.data.synthsign.signers import signing_camera
    from signgen.exports import (
        contact_sheet,
        write_json,
        write_mp4,
        write_png,
        write_pose,
        write_smplx_npz,
    )
    from signgen.paths import weights_hash
    from signgen.render.avatar import render_avatar, smplx_joints

    reference = None if args.avatar_only else _reference(args, model_dir)
    sampling = cfg.video.sampling
    out = pipe(args.text if args.gloss is None else None, args.lang, glosses=args.gloss,
               reference_image=reference, avatar_only=args.avatar_only, seed=args.seed,
               num_inference_steps=args.steps or sampling.num_inference_steps,
               guidance_scale=sampling.guidance_scale, window=sampling.window,
               overlap=sampling.overlap)
    fps = args.fps or cfg.data.fps
    out_dir.mkdir(parents=True, exist_ok=True)
    height, width = pipe.frame_size
    avatar = render_avatar(body, out.smplx_pose, height, width)
    write_mp4(out_dir / "avatar.mp4", avatar, fps)
    write_smplx_npz(out_dir / "smplx.npz", out.smplx_pose, fps, gender=cfg.body.gender,
                    betas=np.zeros(body.num_betas, np.float32))
    write_pose(out_dir / "pose.pose", smplx_joints(body, out.smplx_pose),
               signing_camera(width, height), fps)
    rows = [avatar]
    if out.frames is not None:
        write_mp4(out_dir / "video.mp4", out.frames, fps)
        rows.insert(0, out.frames)
    write_png(out_dir / "preview.png", contact_sheet(rows))
    write_json(out_dir / "tokens.json", {
        "text": args.text, "gloss": args.gloss, "language": args.lang or pipe.languages[0],
        "seed": args.seed, "fps": fps, "model": str(model_dir),
        "model_version": weights_hash(model_dir / "translator"),
        "tokens": out.tokens.tolist(), "notices": out.notices,
        "timings": {k: round(v, 3) for k, v in out.timings.items()}})
    return out.notices


def cli(argv: list[str] | None = None) -> int:
    from signgen.body.model import BodyModel
    from signgen.pipelines.sign_gen import SignGenPipeline

    args = build_parser().parse_args(argv)
    cfg = load_config(args.config, args.overrides)  # fail early on a bad config
    if args.batch:
        raise NotBuiltYetError("batch rendering (--batch, issue #8) is not built yet")
    if args.text is not None and args.gloss is not None:
        raise InvalidInputError("give --text or --gloss, not both")
    model_dir = Path(args.model) if args.model else DEFAULT_MODEL
    if not (model_dir / "model_index.json").is_file():
        raise InvalidInputError(f"no signgen pipeline in {model_dir}" + (
            "; the demo weights are not shipped yet (issue #8): pass --model DIR"
            if not args.model else ""))
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise InvalidInputError(f"--out {out_dir} is a file, not a folder")
    pipe = SignGenPipeline.from_pretrained(model_dir)
    body = BodyModel(cfg.body.model_dir, cfg.body.gender, cfg.body.num_betas,
                     cfg.body.num_expression).eval()
    for notice in generate_one(pipe, body, cfg, args, out_dir, model_dir):
        print(f"notice: {notice}", file=sys.stderr)
    print(f"wrote {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(cli))
