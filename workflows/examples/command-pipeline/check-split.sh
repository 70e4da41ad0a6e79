#!/bin/sh
# Checks every `A+B=C` line of DATA/SPLIT.txt; records per row the answer and the running share
# of correct answers, and writes summary.txt.
set -eu
split=${1:?split}
data=${2:?data folder}
total=0
correct=0
while IFS= read -r line; do
    sum=${line%%=*}
    answer=${line#*=}
    a=${sum%%+*}
    b=${sum#*+}
    total=$(( total + 1 ))
    if [ $(( a + b )) -eq "$answer" ]; then correct=$(( correct + 1 )); fi
    echo "erebor:metric stats/answer $total $answer"
    echo "erebor:metric stats/correct_rate $total $(( correct * 10000 / total ))e-4"
    echo "erebor:progress check $total"
done < "$data/$split.txt"
rate="$(( correct * 10000 / total ))e-4"
echo "erebor:metric correct_rate 0 $rate"
printf 'split %s: %d of %d answers correct\n' "$split" "$correct" "$total" > summary.txt
cat summary.txt
