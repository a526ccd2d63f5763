"""SynthSign command line.

    python -m signgen.data.synthsign generate [--config tiny] [--out DIR] [--workers N]
                                              [--limit N] [--only ID ...] [key=value ...]
    python -m signgen.data.synthsign preview SAMPLE_ID [--root DIR] [--out PREFIX]
    python -m signgen.data.synthsign signers [--out signers.png] [--config tiny]
    python -m signgen.data.synthsign export-lexicon --out DIR [--language ssl-a]
                                                    [--signer s00] [--fps 25] [--size 256]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from signgen.cli import ArgumentParser, run_cli
from signgen.config import DEFAULT_CONFIG, load_config
from signgen.errors import SignGenError


def _generate(args) -> None:
    from signgen.data.synthsign.generate import generate

    cfg = load_config(args.config, args.overrides)
    root = generate(cfg, args.out, workers=args.workers, limit=args.limit, only=args.only)
    meta = json.loads((root / "meta.json").read_text())
    print(f"{root}: {meta['finished']} samples ({meta['status']}), counts {meta['counts']}")


def _preview(args) -> None:
    from signgen.data.synthsign.dataset import read_npz, read_video
    from signgen.data.synthsign.preview import contact_sheet, save_gif, save_png

    root = Path(args.root) if args.root else _default_root(args)
    folder = root / "samples" / args.sample_id
    if not (folder / "sample.json").is_file():
        raise SignGenError(f"no finished sample {args.sample_id!r} in {root}")
    meta = json.loads((folder / "sample.json").read_text())
    frames = read_video(folder / "video.mp4")
    with read_npz(folder / "conditions.npz") as cond:
        pose_map, hands = cond["pose_map"], cond["hand_render"]
    with read_npz(folder / "motion.npz") as motion:
        frame_gloss = motion["frame_gloss"]
    labels = [meta["glosses"][g] if g >= 0 else "-" for g in frame_gloss]
    out = Path(args.out or f"{args.sample_id}")
    out.parent.mkdir(parents=True, exist_ok=True)
    caption = f"[{meta['language']}] {meta['text']}  |  {' '.join(meta['glosses'])}"
    save_png(out.with_suffix(".png"), contact_sheet(frames, pose_map, hands, caption=caption,
                                                    frame_labels=labels))
    save_gif(out.with_suffix(".gif"), frames, pose_map, hands, fps=meta["fps"])
    print(f"wrote {out.with_suffix('.png')} and {out.with_suffix('.gif')}")


def _export(args) -> None:
    from signgen.data.synthsign.lexicon import Lexicon
    from signgen.data.synthsign.lexicon_export import export_lexicon
    from signgen.data.synthsign.signers import make_signers

    cfg = load_config(args.config, [])
    signers = {s.signer_id: s for s in make_signers(cfg.synthsign.num_signers,
                                                     cfg.synthsign.seed)}
    if args.signer not in signers:
        raise SignGenError(f"unknown signer {args.signer!r}; signers: {sorted(signers)}")
    out = export_lexicon(args.out, Lexicon.load(), signers[args.signer], args.language,
                         fps=args.fps, size=(args.size, args.size))
    print(f"wrote {out / 'index.csv'} and {out / args.language}/*.pose")


def _signers(args) -> None:
    from signgen.body import BodyModel
    from signgen.data.synthsign.preview import image_grid, save_png
    from signgen.data.synthsign.signers import make_signers, render_reference

    cfg = load_config(args.config, args.overrides)
    signers = make_signers(cfg.synthsign.num_signers, cfg.synthsign.seed)
    unseen = {s.signer_id for s in signers[len(signers) - cfg.synthsign.num_unseen_signers:]}
    body = BodyModel(cfg.body.model_dir)
    images = [render_reference(s, body, (cfg.render.height, cfg.render.width)) for s in signers]
    labels = [f"{s.signer_id}{' (test)' if s.signer_id in unseen else ''}"
              f"{' L' if s.handedness == 'left' else ''}" for s in signers]
    save_png(args.out, image_grid(images, labels, num_columns=args.columns))
    print(f"wrote {args.out}")


def _default_root(args) -> Path:
    cfg = load_config(args.config, [])
    return Path(cfg.data.root) / cfg.data.dataset


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog="python -m signgen.data.synthsign",
                                     description="SynthSign: signgen's synthetic corpus.")
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate", help="generate (or finish) the dataset")
    gen.add_argument("--config", default=DEFAULT_CONFIG)
    gen.add_argument("--out", help="dataset folder (default: <data.root>/<data.dataset>)")
    gen.add_argument("--workers", type=int, help="processes (default: synthsign.workers)")
    gen.add_argument("--limit", type=int, help="render at most N missing samples")
    gen.add_argument("--only", nargs="+", metavar="ID", help="render only these samples")
    gen.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    gen.set_defaults(func=_generate)
    prev = sub.add_parser("preview", help="contact sheet PNG and GIF of one sample")
    prev.add_argument("sample_id")
    prev.add_argument("--root", help="dataset folder (default: from --config)")
    prev.add_argument("--config", default=DEFAULT_CONFIG)
    prev.add_argument("--out", help="output path without extension (default: SAMPLE_ID)")
    prev.set_defaults(func=_preview)
    sig = sub.add_parser("signers", help="reference images of all signers in one PNG")
    sig.add_argument("--out", default="signers.png")
    sig.add_argument("--columns", type=int, default=8)
    sig.add_argument("--config", default=DEFAULT_CONFIG)
    sig.add_argument("overrides", nargs="*", metavar="KEY=VALUE")
    sig.set_defaults(func=_signers)
    exp = sub.add_parser("export-lexicon", help="isolated signs as .pose files + index.csv")
    exp.add_argument("--out", required=True)
    exp.add_argument("--language", default="ssl-a")
    exp.add_argument("--signer", default="s00")
    exp.add_argument("--fps", type=float, default=25.0)
    exp.add_argument("--size", type=int, default=256, help="image size of the landmarks")
    exp.add_argument("--config", default=DEFAULT_CONFIG)
    exp.set_defaults(func=_export)
    args = parser.parse_args(argv)
    args.func(args)
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
