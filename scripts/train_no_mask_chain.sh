#!/usr/bin/env bash
# The paper's Fig. 10d ablation on equal terms: stages 2-6 of the shipped model's recipe
# (checkpoints/README.md, "Training"), command for command, with --no-mask added, from random
# initialisation. Each stage resumes from its state.safetensors when re-run, and a finished
# stage is a no-op, so this script can be stopped and started again.
#
#     bash scripts/train_no_mask_chain.sh            # writes runs/nm_*
#
# Then copy runs/nm_sdr_ft5/{guidance,mspn}.safetensors into checkpoints/faithful/ablation_no_mask/.
set -euo pipefail
MDE=checkpoints/mde.safetensors
COMMON=(--stage sdr --batch-size 2 --no-mask --mde-checkpoint "$MDE" --log-every 5 --num-threads 2)

python -m sdr_core train "${COMMON[@]}" --out-dir runs/nm_sdr --steps 250 --crop 112 144 \
    --grad-iterations 1 --checkpoint-every 10
python scripts/init_layer1_from_layer2.py --src runs/nm_sdr --out runs/nm_init_copy
python -m sdr_core train "${COMMON[@]}" --out-dir runs/nm_sdr_ft --steps 600 --crop 112 144 \
    --grad-iterations 1000 --lr 5e-4 --init-dir runs/nm_init_copy --checkpoint-every 25 --seed 11
python -m sdr_core train "${COMMON[@]}" --out-dir runs/nm_sdr_ft3 --steps 150 --crop 176 232 \
    --grad-iterations 1000 --lr 2.5e-4 --max-points 300 --init-dir runs/nm_sdr_ft \
    --checkpoint-every 25 --seed 31
python -m sdr_core train "${COMMON[@]}" --out-dir runs/nm_sdr_ft5 --steps 150 --crop 144 192 \
    --grad-iterations 1000 --lr 2.5e-4 --max-points 300 --second-layer-schedule eq13 \
    --init-dir runs/nm_sdr_ft3 --checkpoint-every 10 --seed 41
