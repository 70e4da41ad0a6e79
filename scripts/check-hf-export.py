"""Cross-checks a folder written by `erebor model convert` against transformers.

Loads DIR with transformers, answers a chat prompt greedily, and scores a continuation the way
`erebor model score` does (lm-eval semantics, no special tokens); prints JSON to compare with
`erebor model score DIR --context ... --continuation ... --json`.

    .venv/bin/python scripts/check-hf-export.py DIR "The capital of France is" " Paris"
"""
import json, sys
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

d, context, continuation = sys.argv[1], sys.argv[2], sys.argv[3]
tok = AutoTokenizer.from_pretrained(d)
model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
chat = tok.apply_chat_template([{"role": "user", "content": "What is the capital of France?"}],
                               tokenize=False, add_generation_prompt=True)
ids = tok(chat, add_special_tokens=False, return_tensors="pt").input_ids
with torch.no_grad():
    out = model.generate(ids, max_new_tokens=16, do_sample=False)
answer = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
ctx = tok(context, add_special_tokens=False).input_ids
whole = tok(context + continuation, add_special_tokens=False).input_ids
cont = whole[len(ctx):]
inp = torch.tensor([whole[:-1]])
with torch.no_grad():
    lp = model(inp).logits[0].float().log_softmax(-1)
rows = lp[len(ctx) - 1:]
token_lps = [rows[i, t].item() for i, t in enumerate(cont)]
greedy = all(rows[i].argmax().item() == t for i, t in enumerate(cont))
print(json.dumps({"answer": answer, "logprob": sum(token_lps), "token_logprobs": token_lps,
                  "is_greedy": greedy, "continuation_ids": cont}, indent=1))
