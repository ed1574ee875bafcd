"""Prompt formats by name: `model.chat_template` is `auto`, a name registered here, or a path to a .jinja file.

    tokenizer = use_chat_template(tokenizer, "baichuan-chat")   # replaces the tokenizer's own template
    ids, mask = encode_by_segment(tokenizer, messages)          # the authors' tokenisation (below)

`auto` keeps the tokenizer's own template, rendered and tokenized as one string (what transformers and TRL
do; the tiny profile). A template without `{% generation %}` markers (Qwen2.5, Qwen3, Llama-3 as shipped)
gives no loss mask, so `auto` swaps in TRL's training variant of it: the original's prompts, with the
markers around each answer and its end-of-turn token (Qwen3's also keeps earlier turns' <think> blocks, so
that a conversation renders as a prefix of its continuation). TRL knows a fixed list of families, matched
by the template's exact text; any other template is kept, evaluation uses it, and SFT/DPO refuse to train
on it (qilin_lib.train.sft.check_stop_token_trained). `model.chat_template_kwargs` (Qwen3's
`enable_thinking: false`) go to every render: training, DPO pairs, evaluation prompts.

Generation stops on `stop_token_ids`: the model's `generation_config.eos_token_id` (an int or a list), the
tokenizer's EOS, and the template's end-of-turn marker. The marker matters for bases whose generation config
names only the document end (Qwen2.5-7B: `<|endoftext|>`) while their chat turns end in `<|im_end|>`.

An explicit template is the paper path's: the authors' SFT script (Qilin-Med
scripts/supervised_finetuning.py, MedicalGPT's) encodes every source (the prompt up to the assistant marker)
and every target (the answer) on its own. That matters for SentencePiece tokenizers: `<reserved_103>` is
followed by a space, which the whole string would merge into the answer's first token ("▁好的"), while the
prompt at inference ends in a lone "▁"; encoded apart, training sees what inference will.

`baichuan-chat` is the authors' template (their `register_conv_template`): ` <reserved_102> {query}
<reserved_103> ` per user turn, the answer, then `</s>` (their separator, which is the EOS they append to
every target, so a turn ends with exactly one EOS); no BOS (Baichuan-7B's tokenizer_config.json adds none).
The answer and its EOS sit inside `{% generation %}`: that is the loss mask (targets and EOS only). The
assistant marker is written by the assistant turn (or the generation prompt), so that a source cut to
max_source_length can keep it (qilin_lib.train.sft._cut_source).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

log = logging.getLogger(__name__)

# Newlines never appear in the output: Jinja's trim_blocks (transformers' setting) would eat them anyway.
BAICHUAN_CHAT = (
    "{% for message in messages %}"
    "{% if message['role'] == 'system' %}{{ message['content'] + eos_token }}"
    "{% elif message['role'] == 'user' %}{{ ' <reserved_102> ' + message['content'] }}"
    "{% elif message['role'] == 'assistant' %}{{ ' <reserved_103> ' }}"
    "{% generation %}{{ message['content'] + eos_token }}{% endgeneration %}"
    "{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ ' <reserved_103> ' }}{% endif %}"
)

# name -> (template, role markers that must each be one token of the tokenizer it is applied to)
TEMPLATES: dict[str, tuple[str, tuple[str, ...]]] = {
    "baichuan-chat": (BAICHUAN_CHAT, ("<reserved_102>", "<reserved_103>")),
}


def template_text(name: str) -> str | None:
    """The Jinja source of `name` (None for `auto`): a registered template or a .jinja file."""
    if name == "auto":
        return None
    if name in TEMPLATES:
        return TEMPLATES[name][0]
    return Path(name).expanduser().read_text("utf-8")


def use_chat_template(tokenizer, name: str):
    """Give `tokenizer` the template `name` (`auto`: its own, or TRL's training variant of it; see the module
    docstring). A registered template's role markers must be single tokens: a vocabulary without them would
    train on their characters silently."""
    text = template_text(name)
    if text is None:
        own = getattr(tokenizer, "chat_template", None)
        if own:  # none: the repo's generic one later (train.sft.ensure_chat_template)
            tokenizer.chat_template = _training_variant(tokenizer, own)
        return tokenizer
    vocab = tokenizer.get_vocab()
    for marker in TEMPLATES.get(name, (None, ()))[1]:
        ids = tokenizer(marker, add_special_tokens=False)["input_ids"]
        if vocab.get(marker) not in ids:
            raise ValueError(f"chat template {name!r}: {marker!r} is not one token of this tokenizer "
                             f"({tokenizer.convert_ids_to_tokens(ids)}); it needs the base model's vocabulary")
    tokenizer.chat_template = text
    return tokenizer


def _training_variant(tokenizer, own):
    """`own`, or TRL's training variant of it when it lacks generation markers and TRL knows its family."""
    from trl.chat_template_utils import get_training_chat_template, has_generation_markers

    if has_generation_markers(own):
        return own
    try:
        return get_training_chat_template(tokenizer) or own
    except ValueError:  # a family TRL has no variant of: fine for evaluation, refused by SFT/DPO
        log.warning("the tokenizer's chat template has no {% generation %} markers and TRL has no training "
                    "variant of it; SFT and DPO need model.chat_template set to a template with them")
        return own


def end_of_turn(tokenizer, **template_kwargs) -> str | None:
    """The special token the chat template closes an assistant turn with (`<|im_end|>`, `<|eot_id|>`,
    `<|end|>`): the added token that follows the answer's text in a rendered turn, or None."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    sentinel = "Q1LIN_ANSWER"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": sentinel}], tokenize=False,
        **template_kwargs)
    rest = text[text.rfind(sentinel) + len(sentinel):]
    return max((t for t in tokenizer.get_added_vocab() if rest.startswith(t)), key=len, default=None)


def stop_token_ids(tokenizer, eos_token_id=None, **template_kwargs) -> list[int]:
    """Ids generation stops on: `eos_token_id` (a generation config's: an int, a list or None), the
    tokenizer's EOS and the chat template's end-of-turn token; in that order, without repeats."""
    ids = [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id or [])
    marker = end_of_turn(tokenizer, **template_kwargs)
    ids += [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(marker) if marker else None]
    return [i for i in dict.fromkeys(ids) if i is not None]


def encode_by_segment(tokenizer, messages: Sequence[dict], **template_kwargs) -> tuple[list[int], list[int]]:
    """(input ids, assistant mask) of a rendered conversation whose source and target segments (the text
    outside and inside `{% generation %}`) are each encoded on their own, without special tokens added."""
    from transformers.utils.chat_template_utils import render_jinja_template

    (text,), (spans,) = render_jinja_template(
        conversations=[list(messages)], chat_template=tokenizer.get_chat_template(),
        return_assistant_tokens_mask=True, **{**tokenizer.special_tokens_map, **template_kwargs})
    ids: list[int] = []
    mask: list[int] = []
    pos = 0
    for start, end in [*spans, (len(text), len(text))]:
        for piece, in_target in ((text[pos:start], 0), (text[start:end], 1)):
            if piece:
                piece_ids = tokenizer(piece, add_special_tokens=False)["input_ids"]
                ids += piece_ids
                mask += [in_target] * len(piece_ids)
        pos = end
    return ids, mask
