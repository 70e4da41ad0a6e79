"""The summary of scripts/gpu-check.sh: one row per stage, the erebor/PyTorch comparisons and
each stage's peak GPU memory against erebor-model's estimate for the same shape.

    python3 scripts/gpu_check_summary.py STAGES.tsv LOGS_DIR OUT_DIR

Reads the stage table gpu-check.sh wrote (name, status, rc, milliseconds, idle MiB, peak MiB)
and the JSON lines in each stage's log; prints the summary and writes it to
OUT_DIR/gpu-check-summary.txt, with everything parsed in OUT_DIR/gpu-check.json.
"""
import json
import os
import re
import sys

stages_path, logs, out = sys.argv[1], sys.argv[2], sys.argv[3]
MIB = 1024 * 1024


def json_lines(name):
    path = os.path.join(logs, name + ".log")
    found = []
    if not os.path.exists(path):
        return found
    with open(path, errors="replace") as f:
        for line in f:
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    found.append(json.loads(line))
                except ValueError:
                    pass
    return found


def test_counts(name):
    path = os.path.join(logs, name + ".log")
    counts = {"passed": 0, "failed": 0, "ignored": 0, "skip_messages": 0, "failures": []}
    if not os.path.exists(path):
        return counts
    with open(path, errors="replace") as f:
        text = f.read()
    for m in re.finditer(r"test result: \w+\. (\d+) passed; (\d+) failed; (\d+) ignored", text):
        counts["passed"] += int(m.group(1))
        counts["failed"] += int(m.group(2))
        counts["ignored"] += int(m.group(3))
    counts["skip_messages"] = len(re.findall(r"^skipping", text, re.M))
    counts["failures"] = re.findall(r"^test (\S+) \.\.\. FAILED", text, re.M)
    return counts


def mib(value):
    return "-" if value is None else "{:,.0f}".format(value / MIB)


def num(text):
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


stages = []
with open(stages_path) as f:
    for row in f:
        parts = row.rstrip("\n").split("\t")
        if len(parts) < 6:
            continue
        name, status, rc, ms, idle, peak = parts[:6]
        idle_mib, peak_mib = num(idle), num(peak)
        above = None
        if idle_mib is not None and peak_mib is not None:
            above = (peak_mib - idle_mib) * MIB
        stage = {"stage": name, "status": status, "rc": rc, "seconds": int(ms) / 1000.0,
                 "gpu_idle_mib": idle_mib, "gpu_peak_mib": peak_mib, "gpu_peak_above_idle_bytes": above}
        if name.startswith("test-"):
            stage["tests"] = test_counts(name)
        else:
            stage["results"] = json_lines(name)
        stages.append(stage)
by_name = {s["stage"]: s for s in stages}


def result_text(stage):
    if "tests" in stage:
        t = stage["tests"]
        text = "{} passed, {} failed".format(t["passed"], t["failed"])
        if t["skip_messages"]:
            text += ", {} skip messages".format(t["skip_messages"])
        if t["failures"]:
            text += ": " + " ".join(t["failures"])
        return text
    parts = []
    for r in stage["results"]:
        if "memory_estimate" in r and "bench" not in r:
            parts.append("est {} {:.2f} GB".format(r["memory_estimate"], r["total_bytes"] / 1e9))
        elif r.get("bench") in ("forward_score", "train_step", "train_step_checkpointed"):
            parts.append("{} {:.4f} s/it {:,.0f} tok/s".format(
                r["bench"], r["seconds_per_iter"], r["tokens_per_s"]))
        elif r.get("bench") == "preference_step_dpop":
            parts.append("{:.0f} ms/step {:,.0f} tok/s".format(r["ms_per_step"], r["tokens_per_second"]))
    return "; ".join(parts)


lines = ["=== summary", "{:<20} {:<8} {:>8} {:>12}  {}".format(
    "stage", "status", "seconds", "peak MiB*", "result")]
for s in stages:
    lines.append("{:<20} {:<8} {:>8.1f} {:>12}  {}".format(
        s["stage"], s["status"], s["seconds"], mib(s["gpu_peak_above_idle_bytes"]), result_text(s)))
lines.append("* GPU memory used (nvidia-smi, every 100 ms) at its peak during the stage, minus the "
             "reading before it: CUDA context and the caching allocator's reserve included.")


def pick(stage_name, key, value):
    for r in by_name.get(stage_name, {}).get("results", []):
        if r.get(key) == value:
            return r
    return None


comparisons = []
for bench in ("forward_score", "train_step"):
    e, t = pick("bench-erebor", "bench", bench), pick("bench-torch", "bench", bench)
    if e and t:
        comparisons.append("LM {}: erebor {:.4f} s/it vs PyTorch eager {:.4f} s/it: erebor at {:.2f}x "
                           "of PyTorch's speed ({} params vs {})".format(
                               bench, e["seconds_per_iter"], t["seconds_per_iter"],
                               t["seconds_per_iter"] / e["seconds_per_iter"], e["params"], t["params"]))
e, t = pick("dpop-erebor", "bench", "preference_step_dpop"), pick("dpop-torch", "bench", "preference_step_dpop")
if e and t:
    comparisons.append("DPOP step: erebor {:.0f} ms vs PyTorch eager {:.0f} ms (live reference forward "
                       "inside its step): erebor at {:.2f}x of PyTorch's speed; erebor's reference "
                       "pre-pass {:,.0f} tok/s ({} params vs {})".format(
                           e["ms_per_step"], t["ms_per_step"], t["ms_per_step"] / e["ms_per_step"],
                           e["reference_pass_tokens_per_second"], e["parameters"], t["parameters"]))
if comparisons:
    lines.append("=== erebor vs PyTorch eager")
    lines.extend(comparisons)

memory = []
est = pick("bench-erebor", "memory_estimate", "train_step")
peak = by_name.get("bench-erebor", {}).get("gpu_peak_above_idle_bytes")
if est:
    memory.append("LM (forward + train step): estimate (train step) {:,.0f} MiB [{}], measured peak {} MiB{}".format(
        est["total_bytes"] / MIB, est["parts"], mib(peak),
        "" if not peak else " = {:.2f}x the estimate".format(peak / est["total_bytes"])))
t = pick("bench-torch", "bench", "train_step")
if t and "max_memory_allocated_bytes" in t:
    memory.append("LM PyTorch eager train step: max allocated {} MiB, max reserved {} MiB, nvidia-smi peak {} MiB".format(
        mib(t["max_memory_allocated_bytes"]), mib(t["max_memory_reserved_bytes"]),
        mib(by_name.get("bench-torch", {}).get("gpu_peak_above_idle_bytes"))))
e = pick("dpop-erebor", "bench", "preference_step_dpop")
peak = by_name.get("dpop-erebor", {}).get("gpu_peak_above_idle_bytes")
if e:
    memory.append("DPOP step: estimate {:,.0f} MiB [{}], measured peak {} MiB{}".format(
        e["memory_estimate_bytes"] / MIB, e["memory_estimate"], mib(peak),
        "" if not peak else " = {:.2f}x the estimate".format(peak / e["memory_estimate_bytes"])))
if "dpop-torch" in by_name:
    memory.append("DPOP PyTorch eager (policy + frozen reference copy): nvidia-smi peak {} MiB".format(
        mib(by_name["dpop-torch"].get("gpu_peak_above_idle_bytes"))))
if memory:
    lines.append("=== (d) peak memory against the estimate")
    lines.extend(memory)

bad = [s["stage"] for s in stages if s["status"] != "ok"]
lines.append("=== {} of {} stages ok{}".format(
    len(stages) - len(bad), len(stages), "; not ok: " + " ".join(bad) if bad else ""))
text = "\n".join(lines)
print(text)
with open(os.path.join(out, "gpu-check-summary.txt"), "w") as f:
    f.write(text + "\n")
with open(os.path.join(out, "gpu-check.json"), "w") as f:
    json.dump({"stages": stages, "comparisons": comparisons, "memory": memory}, f, indent=1)
sys.exit(1 if bad else 0)
