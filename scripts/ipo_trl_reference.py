"""IPO's reference numbers as TRL computes them, for crates/erebor-train/tests/ipo_parity.rs.

TRL's DPOTrainer (loss_type="ipo") divides each sequence's summed completion log-prob by its
number of completion tokens before the loss, for the policy and the reference alike:
    logits = (pc/|c| - pr/|r|) - (rc/|c| - rr/|r|);  loss = (logits - 1/(2*beta))**2
This recomputes the per-sequence log-probs of the shared hf-tiny fixtures (policy = <arch>/policy,
reference = <arch>) with transformers in float32 on CPU, exactly as make_fixtures.py does, and writes
the length-normalised IPO loss of their pairs.

    .venv-eval/bin/python scripts/ipo_trl_reference.py ../shared/fixtures/hf-tiny \
        crates/erebor-train/tests/fixtures/ipo_trl.json
"""
import json, os, sys
import torch
from transformers import AutoModelForCausalLM

fixtures, out = sys.argv[1], sys.argv[2]


def seq_logps(model, ids, prompt_len):
    logits = model(ids).logits[:, :-1].float()
    lp = torch.gather(logits.log_softmax(-1), 2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
    mask = torch.zeros_like(lp)
    mask[:, prompt_len - 1:] = 1.0
    return (lp * mask).sum(-1), mask.sum(-1)


result = {"torch": torch.__version__, "transformers": __import__("transformers").__version__,
          "formula": "mean(((pc/nc - pr/nr) - (rc/nc - rr/nr) - 1/(2*beta))**2), n = completion tokens"}
for arch in ["llama", "qwen2", "mistral"]:
    d = os.path.join(fixtures, arch)
    ref = json.load(open(os.path.join(d, "reference.json")))
    pairs = ref["pairs"]
    P, beta = pairs["prompt_len"], pairs["beta"]
    chosen, rejected = torch.tensor(pairs["chosen"]), torch.tensor(pairs["rejected"])
    policy = AutoModelForCausalLM.from_pretrained(os.path.join(d, "policy"), dtype=torch.float32).eval()
    reference = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    with torch.no_grad():
        pc, nc = seq_logps(policy, chosen, P)
        pr, nr = seq_logps(policy, rejected, P)
        rc, _ = seq_logps(reference, chosen, P)
        rr, _ = seq_logps(reference, rejected, P)
    logits = (pc / nc - pr / nr) - (rc / nc - rr / nr)
    loss = ((logits - 1 / (2 * beta)) ** 2).mean()
    result[arch] = {"ipo_loss": loss.item(), "completion_tokens_chosen": nc.tolist(),
                    "completion_tokens_rejected": nr.tolist(), "beta": beta}
json.dump(result, open(out, "w"), indent=1)
print(json.dumps(result, indent=1))
