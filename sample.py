"""Generate sign language from text: a signing video and an SMPL-X avatar.

    python sample.py --text "..." [--lang TAG] [--gloss "..."] [--reference IMG | --signer ID]
                     [--seed N] [--steps N] [--fps N] [--avatar-only] [--model DIR] --out DIR
    python sample.py --batch jobs.jsonl --out DIR
"""

from __future__ import annotations

import argparse
import sys

from signgen.cli import NotBuiltYetError, run_cli
from signgen.config import DEFAULT_CONFIG, load_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Text to sign language video and avatar.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="spoken-language text to sign")
    source.add_argument("--batch", help="JSONL file of jobs (id, text, optional lang, "
                                        "reference, seed, gloss)")
    parser.add_argument("--lang", help="target sign-language tag")
    parser.add_argument("--gloss", help="gloss sequence to sign instead of translating text")
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


def cli(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    load_config(args.config, args.overrides)  # fail early on a bad config
    raise NotBuiltYetError("text-to-sign generation (SignGenPipeline, issue #8) is not built "
                           "yet; this checkout provides the body model, renderer and configs")


if __name__ == "__main__":
    sys.exit(run_cli(cli))
