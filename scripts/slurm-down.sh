#!/usr/bin/env bash
# Stops the single-node Slurm cluster scripts/slurm-up.sh started (slurmd, slurmctld, munged).
exec "$(dirname "$0")/slurm-up.sh" --down
