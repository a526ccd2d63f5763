#!/usr/bin/env bash
# Times configs/tiny_fast_stage2.yaml's stage II alone (issue #6; docs/training.md, "A stage
# II in half an hour"): FSQ autoencoder (with its embedding cache, removed first so that
# its build is timed), tokens of train and dev, token pose decoder; then scores the avatar
# path on the 150 unseen-signer clips. Needs SynthSign with its train frame cache (stage I
# builds it) and the shipped pipeline's stage I. Run from the repository root:
#   bash benchmarks/stage2_fast_recipe.sh [run folder, default outputs/r30]
set -euxo pipefail
run=${1:-outputs/r30}
rm -rf data/synthsign/cache/embeddings-* "$run"
date
time python train.py --stage fsq --config tiny_fast_stage2 fsq.video_model=assets/pipeline \
    experiment.output_dir="$run"
time python -m signgen.data.tokens --fsq "$run/fsq/model" --split train --embedding-cache
time python -m signgen.data.tokens --fsq "$run/fsq/model" --split dev
time python train.py --stage pose_decoder --config tiny_fast_stage2 experiment.output_dir="$run" \
    pose_decoder.fsq_model="$run/fsq/model"
date
python -m signgen.eval score --system stage2_avatar --split test_unseen_signers \
    --fsq "$run/fsq/model" --model assets/pipeline --pose-decoder "$run/pose_decoder/model" \
    --tag "$(basename "$run")"
