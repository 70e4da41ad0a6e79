//! Named built-in chat templates, verbatim from the `tokenizer_config.json` of the models that
//! defined them, with the BOS/EOS strings those models use when the checkpoint gives none.

/// A built-in template: its Jinja source and default BOS/EOS strings.
#[derive(Debug, Clone, Copy)]
pub struct BuiltinTemplate {
    /// The name users give (`chatml`, `llama-2`, `mistral`, `llama-3`).
    pub name: &'static str,
    /// Where the template comes from.
    pub origin: &'static str,
    /// Jinja source.
    pub source: &'static str,
    /// BOS string used when the tokenizer has none.
    pub default_bos: &'static str,
    /// EOS string used when the tokenizer has none.
    pub default_eos: &'static str,
}

/// ChatML, as in teknium/OpenHermes-2.5-Mistral-7B and Qwen chat models (without a default
/// system prompt).
const CHATML: &str = "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/// meta-llama/Llama-2-7b-chat-hf: the system prompt goes inside the first `[INST]` in
/// `<<SYS>>` tags; contents are stripped; each user turn starts with BOS.
const LLAMA_2: &str = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}";

/// mistralai/Mixtral-8x7B-Instruct-v0.1 (the Mistral-Instruct format): no system role.
const MISTRAL: &str = "{{ bos_token }}{% for message in messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% else %}{{ raise_exception('Only user and assistant roles are supported!') }}{% endif %}{% endfor %}";

/// meta-llama/Meta-Llama-3-8B-Instruct.
const LLAMA_3: &str = "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}";

/// All built-ins, by name.
pub const BUILTINS: &[BuiltinTemplate] = &[
    BuiltinTemplate {
        name: "chatml",
        origin: "teknium/OpenHermes-2.5-Mistral-7B",
        source: CHATML,
        default_bos: "<|im_start|>",
        default_eos: "<|im_end|>",
    },
    BuiltinTemplate {
        name: "llama-2",
        origin: "meta-llama/Llama-2-7b-chat-hf",
        source: LLAMA_2,
        default_bos: "<s>",
        default_eos: "</s>",
    },
    BuiltinTemplate {
        name: "mistral",
        origin: "mistralai/Mixtral-8x7B-Instruct-v0.1",
        source: MISTRAL,
        default_bos: "<s>",
        default_eos: "</s>",
    },
    BuiltinTemplate {
        name: "llama-3",
        origin: "meta-llama/Meta-Llama-3-8B-Instruct",
        source: LLAMA_3,
        default_bos: "<|begin_of_text|>",
        default_eos: "<|eot_id|>",
    },
];

/// Looks a built-in up by name (`llama2`/`llama3` are accepted for `llama-2`/`llama-3`).
pub(super) fn find(name: &str) -> Option<&'static BuiltinTemplate> {
    let normalised = match name {
        "llama2" => "llama-2",
        "llama3" => "llama-3",
        other => other,
    };
    BUILTINS.iter().find(|b| b.name == normalised)
}
