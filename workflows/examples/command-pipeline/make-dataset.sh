#!/bin/sh
# Writes data/train.txt and data/eval.txt (80/20) with ROWS lines `A+B=C`; every WRONG_EVERY-th
# answer is off by one. Deterministic (a linear congruential generator seeded with 42).
set -eu
rows=${1:?rows}
wrong_every=${2:?wrong_every}
mkdir -p data
: > data/train.txt
: > data/eval.txt
seed=42
i=0
while [ "$i" -lt "$rows" ]; do
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    a=$(( seed % 100 ))
    seed=$(( (seed * 1103515245 + 12345) % 2147483648 ))
    b=$(( seed % 100 ))
    c=$(( a + b ))
    if [ $(( (i + 1) % wrong_every )) -eq 0 ]; then c=$(( c + 1 )); fi
    if [ $(( i % 5 )) -eq 4 ]; then out=data/eval.txt; else out=data/train.txt; fi
    echo "$a+$b=$c" >> "$out"
    i=$(( i + 1 ))
done
echo "erebor:metric rows 0 $rows"
echo "wrote $(wc -l < data/train.txt) train and $(wc -l < data/eval.txt) eval rows"
