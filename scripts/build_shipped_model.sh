#!/usr/bin/env bash
# Rebuild the shipped model from ../shared/data, end to end (its steps took about an hour in all, run one by one):
#   bash scripts/build_shipped_model.sh            # the full model (the default: headpose_ssrnet_mt.*)
#   bash scripts/build_shipped_model.sh --lite     # the lite model (width 0.5: headpose_ssrnet_mt_lite.*)
# 1. synthetic renders of 1,000 UTKFace photos (../shared/data/faces) → a model that never saw BIWI;
# 2. fine-tune it on 12 BIWI sequences, validating on 04 11 17 22 held out by sequence;
# 3. export (.tflite, int8 .tflite, .onnx), check parity, evaluate, write the model card, into src/headpose/weights.
# The renders are made as those behind the shipped weights were: the same photos (configs/synth_photos_*.txt),
# light without a colour cast (--colour-cast 0), the plain set packed with the centre jitter of then (--shift 0.02).
set -euo pipefail
cd "$(dirname "$0")/.."
LITE=0
if [ "${1:-}" = "--lite" ]; then LITE=1; elif [ -n "${1:-}" ]; then echo "usage: $0 [--lite]" >&2; exit 2; fi
S=runs/synth
mkdir -p runs/data "$S/photos" "$S/val_photos"

# --- data and renders (skipped when a previous run of this script made them) ---------------------------------
if [ ! -f "$S/faces_val150_r8_lit.npz" ]; then
    # --- data ------------------------------------------------------------------------------------------------
    headpose prepare biwi --src ../shared/data/biwi_crops --out runs/data/biwi.npz --holdout 04,11,17,22
    headpose prepare biwi --src ../shared/data/biwi_crops --out "$S/biwi_all.npz"
    headpose prepare biwi --src ../shared/data/biwi_frames --out runs/data/biwi_frames.npz
    headpose prepare aflw2000 --src ../shared/data/aflw2000 --out runs/data/aflw2000.npz

    # --- synthetic renders: 1,000 photos for training, 150 others for validation (linked, not copied); the
    #     lists are the photos behind the shipped model (the 1,000 are `ls faces | shuf -n 1000 --random-source=<(yes 7)`)
    while read -r f; do ln -sf "$PWD/../shared/data/faces/$f" "$S/photos/"; done < configs/synth_photos_train.txt
    while read -r f; do ln -sf "$PWD/../shared/data/faces/$f" "$S/val_photos/"; done < configs/synth_photos_val.txt
    headpose synth mesh --images "$S/photos" --out "$S/meshes"
    headpose synth mesh --images "$S/val_photos" --out "$S/val_meshes"
    headpose synth render --image_dir "$S/meshes" --obj_dir "$S/meshes" --out "$S/renders" --random 16 --size 160 \
        --background photo
    headpose synth render --image_dir "$S/meshes" --obj_dir "$S/meshes" --out "$S/renders_lit" --random 16 --size 160 \
        --background photo --lighting 0.6 --colour-cast 0
    headpose synth render --image_dir "$S/val_meshes" --obj_dir "$S/val_meshes" --out "$S/val_renders_lit" --random 8 \
        --size 160 --background photo --lighting 0.6 --colour-cast 0 --seed 1
    python -m headpose.synth.pack "$S/renders" "$S/faces1000_r16.npz" --shift 0.02
    python -m headpose.synth.pack "$S/renders_lit" "$S/faces1000_r16_lit.npz"
    python -m headpose.synth.pack "$S/val_renders_lit" "$S/faces_val150_r8_lit.npz" --seed 1

fi

# --- train: renders only, then fine-tune on BIWI -----------------------------------------------------------
if [ "$LITE" = 1 ]; then
    headpose train --config configs/lite_probe.toml
    headpose train --config configs/lite_render_only.toml
    headpose evaluate --model runs/lite/render_only/best.keras --data "$S/biwi_all.npz"   # never saw BIWI
    headpose train --config configs/lite.toml
    python scripts/ship_model.py runs/lite/final/best.keras --name headpose_ssrnet_mt_lite \
        --val runs/data/biwi_test.npz --margin 0.3 \
        --also runs/data/aflw2000.npz runs/data/biwi_frames.npz "$S/biwi_all.npz" \
        --data "pretraining: synthetic renders of meshes made from 1,000 UTKFace photos (../shared/data/faces), no BIWI" \
               "fine-tuning: BIWI crops, 12 sequences (01 02 05 07 08 10 13 14 16 19 20 23), 7,434 crops" \
        --commands "bash scripts/build_shipped_model.sh --lite" \
        --note "the lite variant: SSR-Net-MT at half width (channels x 0.5), same recipe as the full model"
    exit 0
fi
headpose train --config configs/synth_probe_lit.toml
headpose train --config configs/synth_render_only.toml
headpose evaluate --model "$S/render_only/best.keras" --data "$S/biwi_all.npz"   # never saw BIWI
headpose train --config configs/shipped.toml

# --- ship ----------------------------------------------------------------------------------------------------
python scripts/ship_model.py runs/shipped/best.keras --val runs/data/biwi_test.npz --margin 0.3 \
    --also runs/data/aflw2000.npz runs/data/biwi_frames.npz "$S/biwi_all.npz" \
    --data "pretraining: synthetic renders of meshes made from 1,000 UTKFace photos (../shared/data/faces), no BIWI" \
           "fine-tuning: BIWI crops, 12 sequences (01 02 05 07 08 10 13 14 16 19 20 23), 7,434 crops" \
    --commands "bash scripts/build_shipped_model.sh"
