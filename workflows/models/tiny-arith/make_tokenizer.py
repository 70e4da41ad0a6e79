"""Writes tokenizer.json, tokenizer_config.json and config.json of the tiny-arith model.

A word-level vocabulary covering erebor-data's synthetic arithmetic problems (its VOCABULARY,
digits one at a time, the operators) and a ChatML-style chat template. Words and digits carry an
optional leading space as GPT-2-style tokenizers do; the Fuse decoder concatenates tokens, so
decode(encode(text)) == text for any text over this vocabulary. No weights: the `sft` step
initialises them from its seed (`init: random`). Run `python3 make_tokenizer.py` to regenerate.
"""
import json

SPECIAL = ["<unk>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"]
WORDS = [
    # erebor-data builders/synth.rs VOCABULARY
    "Ann", "Bob", "Mia", "Sam", "She", "He", "has", "gets", "more", "gives", "away", "makes",
    "it", "times", "as", "many", "splits", "them", "into", "equal", "groups", "and", "keeps",
    "one", "group", "How", "does", "have", "now", "apples", "books", "coins", "cards",
    # chat roles and a short system prompt
    "system", "user", "assistant", "You", "solve", "the", "problem", "step", "by", "Answer",
    "with", "a", "line", "per",
]
DIGITS = [str(d) for d in range(10)]
PUNCT = [".", "?", ",", ":", "+", "-", "*", "/", "=", "#", "!", "'", "(", ")"]

vocab = {}
for token in SPECIAL:
    vocab[token] = len(vocab)
for token in ["\n", " "]:
    vocab[token] = len(vocab)
for piece in WORDS + DIGITS + PUNCT:
    for token in (piece, " " + piece):
        vocab[token] = len(vocab)

added = [
    {"id": vocab[t], "content": t, "single_word": False, "lstrip": False, "rstrip": False,
     "normalized": False, "special": True}
    for t in SPECIAL
]
tokenizer = {
    "version": "1.0",
    "truncation": None,
    "padding": None,
    "added_tokens": added,
    "normalizer": None,
    "pre_tokenizer": {
        "type": "Split",
        "pattern": {"Regex": " ?[A-Za-z]+| ?[0-9]| ?[^A-Za-z0-9\\s]|\\n| "},
        "behavior": "Isolated",
        "invert": False,
    },
    "post_processor": None,
    "decoder": {"type": "Fuse"},
    "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "<unk>"},
}
with open("tokenizer.json", "w") as f:
    json.dump(tokenizer, f, indent=1, ensure_ascii=False)
    f.write("\n")

template = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
tokenizer_config = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "add_bos_token": False,
    "add_eos_token": False,
    "bos_token": None,
    "eos_token": "<|im_end|>",
    "pad_token": "<|endoftext|>",
    "unk_token": "<unk>",
    "model_max_length": 256,
    "chat_template": template,
    "added_tokens_decoder": {
        str(vocab[t]): {"content": t, "lstrip": False, "normalized": False, "rstrip": False,
                        "single_word": False, "special": True}
        for t in SPECIAL
    },
}
with open("tokenizer_config.json", "w") as f:
    json.dump(tokenizer_config, f, indent=1)
    f.write("\n")

vocab_size = (len(vocab) + 7) // 8 * 8
config = {
    "architectures": ["LlamaForCausalLM"],
    "model_type": "llama",
    "vocab_size": vocab_size,
    "hidden_size": 128,
    "intermediate_size": 352,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 32,
    "hidden_act": "silu",
    "max_position_embeddings": 256,
    "rms_norm_eps": 1e-6,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
    "attention_bias": False,
    "mlp_bias": False,
    "initializer_range": 0.02,
    "bos_token_id": None,
    "eos_token_id": vocab["<|im_end|>"],
    "pad_token_id": vocab["<|endoftext|>"],
    "torch_dtype": "float32",
}
with open("config.json", "w") as f:
    json.dump(config, f, indent=1)
    f.write("\n")
print(len(vocab), "tokens; vocab_size", vocab_size)
