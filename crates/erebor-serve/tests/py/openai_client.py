"""Talks to `erebor model serve` with the official openai client (argv: base_url, model, key).

Prints one JSON object: the models list, a whole chat reply, the streamed chat text, and a
completion, for the Rust test to compare.
"""
import json
import sys

from openai import OpenAI

base_url, model, key = sys.argv[1:4]
client = OpenAI(base_url=base_url, api_key=key)
messages = [{"role": "user", "content": "What is the capital of France?"}]
whole = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=24, seed=3
)
stream = client.chat.completions.create(
    model=model, messages=messages, temperature=0, max_tokens=24, stream=True,
    stream_options={"include_usage": True},
)
streamed, usage = "", None
for chunk in stream:
    if chunk.choices and chunk.choices[0].delta.content:
        streamed += chunk.choices[0].delta.content
    if chunk.usage is not None:
        usage = chunk.usage.model_dump()
completion = client.completions.create(model=model, prompt="Paris is", max_tokens=5, temperature=0)
try:
    client.chat.completions.create(model="nope", messages=messages, max_tokens=2)
    unknown = None
except Exception as e:  # openai.NotFoundError
    unknown = type(e).__name__
print(json.dumps({
    "models": [m.id for m in client.models.list().data],
    "whole": whole.choices[0].message.content,
    "finish": whole.choices[0].finish_reason,
    "usage": whole.usage.model_dump(),
    "streamed": streamed,
    "stream_usage": usage,
    "completion_tokens": completion.usage.completion_tokens,
    "unknown_model_error": unknown,
}))
