"""What every benchmark asks of a model: greedy generation, next-token choice, continuation likelihood.

    scorer = Scorer.load(cfg, model_dir, chat=True)
    scorer.generate(prompts, max_new_tokens=32)                  # batched, left-padded, greedy
    scorer.next_token_logprobs(contexts, ["A", "B", "C", "D"])   # [n, 4], one forward pass per batch
    scorer.continuation_logprobs([(context, continuation), ...]) # summed log-prob + token count per pair

Prompt wrapping (`chat`): a base or DCPT model reads the benchmark prompt as raw text, as the papers
evaluate base models; an instruction-tuned model (SFT, DPO) gets it as the user turn of its chat template,
with the answer prefix (e.g. `答案：`) opening the assistant turn where a mode needs the next token after
it. `context(body, prefix)` is the one place that rule lives; `chat_template_kwargs` (the profile's
`model.chat_template_kwargs`, e.g. Qwen3's `enable_thinking: false`) go to that render.

Generation stops on qilin_lib.chat_templates.stop_token_ids: every id of the model's
`generation_config.eos_token_id` (an int or a list), the tokenizer's EOS and the chat template's end-of-turn
token (`<|im_end|>` for a Qwen base whose generation config names only `<|endoftext|>`).

Batches are sorted by length (less padding) and results returned in input order. Prompts longer than the
model's window lose their beginning (the question and answer slot at the end matter most; a C-Eval 5-shot
prompt then loses its first shots), and the number of truncated prompts is counted in `self.truncated`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..chat_templates import stop_token_ids
from .intervals import IntervalSpec


@dataclass
class Scorer:
    model: object
    tokenizer: object
    chat: bool = False
    batch_size: int = 32
    progress: bool = True
    max_length: int = 0            # 0: the model's max_position_embeddings (or 2048)
    chat_template_kwargs: dict = field(default_factory=dict)
    # how the metrics' 95% intervals are drawn (config evaluation.bootstrap_resamples / interval_seed)
    intervals: IntervalSpec = field(default_factory=IntervalSpec)
    truncated: int = field(default=0, init=False)
    # (context, continuation) -> score: cloze's neutral-question scores repeat across items and tasks
    _continuations: dict = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self):
        import inspect

        self.model.eval()
        params = inspect.signature(self.model.forward).parameters
        # transformers >= 5.2x names the KV-cache argument `cache`; remote-code models (Baichuan) keep the older
        # `past_key_values`. `logits_to_keep=1`, where supported, lets a pass whose other positions are not
        # read skip the vocabulary projection for them (most of a small model's compute).
        self._cache_kwarg = "cache" if "cache" in params else "past_key_values"
        self._last_only = {"logits_to_keep": 1} if "logits_to_keep" in params else {}
        if not self.max_length:
            self.max_length = getattr(self.model.config, "max_position_embeddings", None) or 2048
        if self.chat and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("chat=True needs a tokenizer with a chat template")

    @classmethod
    def load(cls, cfg, model_dir: str | Path, *, chat: bool = False, **kw) -> Scorer:
        from ..modeling import load_model_and_tokenizer

        model, tokenizer = load_model_and_tokenizer(cfg.model, str(model_dir))
        if kw.get("batch_size") == 0:  # evaluation.batch_size 0: sized to the GPU's memory
            kw["batch_size"] = auto_batch_size(model, kw.get("max_length") or 0)
        return cls(model, tokenizer, chat=chat, chat_template_kwargs=cfg.model.chat_template_kwargs,
                   intervals=IntervalSpec.from_config(cfg), **kw)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    # -------------------------------------------------------------------------------- prompts
    def context(self, body: str, prefix: str = "") -> str:
        """The text a model sees before its answer: raw `body + prefix`, or for a chat model the
        chat template around `body` with `prefix` opening the assistant turn."""
        if not self.chat:
            return body + prefix
        wrapped = self.tokenizer.apply_chat_template([{"role": "user", "content": body}], tokenize=False,
                                                     add_generation_prompt=True, **self.chat_template_kwargs)
        return wrapped + prefix

    def _encode(self, text: str, budget: int) -> list[int]:
        # Chat templates carry their own BOS; raw prompts get none (the DCPT blocks start after an EOS).
        return self._fit(self.tokenizer(text, add_special_tokens=False)["input_ids"], budget)

    def _fit(self, ids: list[int], budget: int) -> list[int]:
        """The last `budget` tokens (a prompt loses its beginning), counted in `truncated` when cut."""
        if len(ids) > budget:
            self.truncated += 1
            ids = ids[len(ids) - budget:]
        return ids

    def _split_pairs(self, pairs: Sequence[tuple[str, str]]) -> tuple[dict[str, list[int]], list[list[int]]]:
        """({context: its tokens}, the tokens each continuation adds after its context).

        A continuation's tokens are those of context + continuation after the context's own tokens:
        lm-evaluation-harness's rule (lm_eval/api/model.py, TemplateLM._encode_pair, v0.4.13). Encoded alone, a
        SentencePiece tokenizer's dummy prefix would put a "▁" between a prompt and its answer ("A" alone is
        ["▁", "A"], while "答案：A" is [..., "：", "A"], what the model saw in training and continues with
        when it generates). Unlike lm-eval, a context's trailing whitespace stays in the context: it is part of
        the prompt generation sees (a chat template's final newline)."""
        def encode(texts: list[str]) -> list[list[int]]:
            return self.tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []

        contexts = list(dict.fromkeys(c for c, _ in pairs))
        context_ids = dict(zip(contexts, encode(contexts)))
        conts = []
        for (context, continuation), whole in zip(pairs, encode([c + x for c, x in pairs])):
            cont = whole[len(context_ids[context]):]
            if continuation and not cont:
                raise ValueError(f"continuation {continuation!r} adds no token after context ...{context[-40:]!r}")
            conts.append(cont)
        return context_ids, conts

    def _first_step_tokens(self, prompts: Sequence[str], candidates: Sequence[str]) -> list[list[int]] | None:
        """Each prompt's candidate tokens, for `generate` to read from its first decoding step; None when some
        prompt's candidates share leading tokens, which that step does not score. Truncation is not counted
        here: the generation pass counts its own rows."""
        counted = self.truncated
        _, tokens, shared = self._letter_rows(prompts, candidates)
        self.truncated = counted
        return None if any(shared) else tokens

    def _letter_rows(self, contexts: Sequence[str], candidates: Sequence[str]) -> tuple[list, list, list[int]]:
        """Per context: the tokens to run (the context fitted to the window, then any tokens that every
        candidate's continuation starts with), each candidate's token after them, whose log-probability
        ranks the candidates as their summed log-probabilities do, and how many shared tokens were appended.
        A candidate longer than one token is represented by its first token after the shared ones."""
        k = len(candidates)
        context_ids, conts = self._split_pairs([(c, x) for c in contexts for x in candidates])
        rows, tokens, shared_counts = [], [], []
        for i, context in enumerate(contexts):
            mine = conts[i * k:(i + 1) * k]
            shared = 0
            while shared < min(map(len, mine)) - 1 and len({m[shared] for m in mine}) == 1:
                shared += 1
            firsts = [m[shared] for m in mine]
            if len(set(firsts)) < len(set(candidates)):
                raise ValueError(f"candidates {list(candidates)} do not differ in their first token after the shared "
                                 f"ones ({mine}): a next-token score cannot tell them apart")
            rows.append(self._fit(context_ids[context], self.max_length - shared) + mine[0][:shared])
            tokens.append(firsts)
            shared_counts.append(shared)
        return rows, tokens, shared_counts

    def _batches(self, lengths: Sequence[int], desc: str):
        order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
        starts = range(0, len(order), self.batch_size)
        for s in tqdm(starts, desc=desc, disable=not self.progress, leave=False):
            yield order[s: s + self.batch_size]

    def _left_padded(self, rows: list[list[int]]) -> dict:
        width = max(map(len, rows))
        pad = self.tokenizer.pad_token_id
        ids = torch.tensor([[pad] * (width - len(r)) + r for r in rows])
        mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
        # Positions count real tokens only, so a left-padded row sees the positions it would see alone.
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        return {"input_ids": ids.to(self.device), "attention_mask": mask.to(self.device),
                "position_ids": positions.to(self.device)}

    # -------------------------------------------------------------------------------- modes
    @torch.no_grad()
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, desc: str = "generate",
                 first_token_candidates: Sequence[str] | None = None):
        """Greedy continuations of already-wrapped prompts (use `context`), cut at the first end-of-sequence
        or end-of-turn token, special tokens stripped. With `first_token_candidates`, also returns what
        `next_token_logprobs` would for them, read from the same pass (the first decoding step).

        A plain KV-cache loop rather than `model.generate`: the same tokens as transformers' greedy search
        (a test checks it), at a fraction of its per-step overhead, which dominates for small models."""
        rows = [self._encode(p, self.max_length - max_new_tokens) for p in prompts]
        stop_ids = self._stop_ids()
        stop = torch.tensor(stop_ids, device=self.device)
        out: list[str] = [""] * len(rows)
        cand = self._first_step_tokens(prompts, first_token_candidates) if first_token_candidates else None
        if first_token_candidates and cand is None:  # the first decoding step cannot score them: a pass of their own
            first = self.next_token_logprobs(prompts, first_token_candidates, desc=f"{desc} (letters)")
        elif first_token_candidates:
            first = torch.empty(len(rows), len(first_token_candidates))
        for idx in self._batches([len(r) for r in rows], desc):
            batch = self._left_padded([rows[i] for i in idx])
            mask, positions = batch["attention_mask"], batch["position_ids"][:, -1:]
            step = self.model(**batch, use_cache=True, **self._last_only)
            if cand:
                lp = torch.log_softmax(step.logits[:, -1].float(), -1)
                first[idx] = lp.gather(1, torch.tensor([cand[i] for i in idx], device=lp.device)).cpu()
            tokens, done = [], torch.zeros(len(idx), dtype=torch.bool, device=self.device)
            for _ in range(max_new_tokens):
                nxt = step.logits[:, -1].argmax(-1)
                done = done | torch.isin(nxt, stop)
                tokens.append(nxt.masked_fill(done, stop[0]))
                if bool(done.all()) or len(tokens) == max_new_tokens:
                    break
                mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
                positions = positions + 1
                cache = getattr(step, "cache", None) or step.past_key_values
                step = self.model(input_ids=nxt[:, None], attention_mask=mask, position_ids=positions,
                                  use_cache=True, **{self._cache_kwarg: cache}, **self._last_only)
            generated = torch.stack(tokens, dim=1).tolist()
            for i, ids in zip(idx, generated):
                ids = ids[: next((k for k, t in enumerate(ids) if t in stop_ids), len(ids))]
                out[i] = self.tokenizer.decode(ids, skip_special_tokens=True).strip()
        return (out, first) if first_token_candidates else out

    def _stop_ids(self) -> list[int]:
        config = getattr(self.model, "generation_config", None)  # a wrapped remote-code model may have none
        return stop_token_ids(self.tokenizer, getattr(config, "eos_token_id", None), **self.chat_template_kwargs)

    @torch.no_grad()
    def next_token_logprobs(self, contexts: Sequence[str], candidates: Sequence[str],
                            desc: str = "next token") -> torch.Tensor:
        """log P(each candidate's token | context): [len(contexts), len(candidates)], one forward pass per
        batch. The candidates' tokens are those they add after the context (_split_pairs); candidates are
        expected to be single tokens (option letters) after any tokens they all start with (_letter_rows)."""
        rows, tokens, _ = self._letter_rows(contexts, candidates)
        out = torch.empty(len(rows), len(candidates))
        for idx in self._batches([len(r) for r in rows], desc):
            logits = self.model(**self._left_padded([rows[i] for i in idx]), **self._last_only).logits[:, -1].float()
            lp = torch.log_softmax(logits, -1)
            out[idx] = lp.gather(1, torch.tensor([tokens[i] for i in idx], device=lp.device)).cpu()
        return out

    def continuation_logprobs(self, pairs: Sequence[tuple[str, str]],
                              desc: str = "continuations") -> list[tuple[float, int]]:
        """(sum of log P(continuation tokens | context), number of continuation tokens) per pair; the
        continuation's tokens are those it adds after the context (lm-evaluation-harness's rule, _split_pairs).
        Pairs scored before by this scorer are not scored again."""
        todo = list(dict.fromkeys(p for p in pairs if p not in self._continuations))
        for pair, score in zip(todo, self._score_continuations(todo, desc)):
            self._continuations[pair] = score
        return [self._continuations[p] for p in pairs]

    @torch.no_grad()
    def _score_continuations(self, pairs: Sequence[tuple[str, str]], desc: str) -> list[tuple[float, int]]:
        """Each distinct context runs once: its KV cache is copied to every continuation that follows it
        (cloze scores 4-5 options after one question, VoC two verdicts after one prompt), and only the
        continuation tokens run again. Same numbers as scoring every concatenation on its own."""
        context_ids, conts = self._split_pairs(pairs)
        conts = [c[: self.max_length - 1] for c in conts]
        by_context: dict[str, list[int]] = {}
        for i, (context, _) in enumerate(pairs):
            by_context.setdefault(context, []).append(i)
        contexts = list(by_context)
        rows = [self._fit(context_ids[c], self.max_length - max(len(conts[i]) for i in by_context[c]))
                or [self.tokenizer.eos_token_id] for c in contexts]
        out: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
        for idx in self._batches([len(r) for r in rows], desc):
            batch = self._left_padded([rows[j] for j in idx])
            ctx = self.model(**batch, use_cache=True, **self._last_only)
            first = torch.log_softmax(ctx.logits[:, -1].float(), -1)    # predicts each continuation's token 0
            members = [(b, i) for b, j in enumerate(idx) for i in by_context[contexts[j]] if conts[i]]
            if not members:
                continue
            select = torch.tensor([b for b, _ in members], device=self.device)
            scores = first[select, torch.tensor([conts[i][0] for _, i in members], device=self.device)]
            width = max(len(conts[i]) for _, i in members) - 1           # tokens 1.. need one more pass
            if width > 0:
                cache = _reorder(getattr(ctx, "cache", None) or ctx.past_key_values, select)
                pad = self.tokenizer.pad_token_id
                feed = torch.tensor([(conts[i] + [pad] * width)[:width] for _, i in members], device=self.device)
                target = torch.tensor([(conts[i][1:] + [pad] * width)[:width] for _, i in members], device=self.device)
                valid = torch.tensor([[t < len(conts[i]) - 1 for t in range(width)] for _, i in members],
                                     device=self.device)
                mask = torch.cat([batch["attention_mask"][select], valid.long()], dim=1)
                start = batch["attention_mask"][select].sum(-1, keepdim=True)
                positions = start + torch.arange(width, device=self.device)
                logits = self.model(input_ids=feed, attention_mask=mask, position_ids=positions,
                                    **{self._cache_kwarg: cache}).logits.float()
                token_lp = torch.log_softmax(logits, -1).gather(-1, target.unsqueeze(-1)).squeeze(-1)
                scores = scores + (token_lp * valid).sum(-1)
            for (_, i), score in zip(members, scores.tolist()):
                out[i] = (score, len(conts[i]))
        return out


def auto_batch_size(model, max_length: int = 0, cpu_default: int = 16) -> int:
    """Prompts per batch for `evaluation.batch_size: 0`: on a GPU, what fits in the memory free after the model
    is loaded (qilin_lib.plan.eval_batch_size, an estimate); on CPU `cpu_default`."""
    from ..plan import eval_batch_size, shape_from_config

    device = next(model.parameters()).device
    if device.type != "cuda":
        return cpu_default
    free, _ = torch.cuda.mem_get_info(device)
    config = model.config.to_dict()
    seq_len = max_length or config.get("max_position_embeddings") or 2048
    return eval_batch_size(shape_from_config(config, "model"), seq_len, free, next(model.parameters()).element_size())


def _reorder(cache, rows: torch.Tensor):
    """The KV cache of batch rows `rows` (repeats allowed): a transformers Cache reorders in place; the
    legacy cache of remote-code models (a tuple of (key, value) per layer, batch first) is indexed, and the
    model gets back the type it returned."""
    if hasattr(cache, "reorder_cache"):
        cache.reorder_cache(rows)
        return cache
    if isinstance(cache, (tuple, list)) and all(isinstance(layer, (tuple, list)) for layer in cache):
        return tuple(tuple(t.index_select(0, rows) for t in layer) for layer in cache)
    raise TypeError(f"unsupported KV cache {type(cache).__name__}: expected a transformers Cache or a tuple of "
                    "(key, value) per layer; for Baichuan-7B run `qilin convert baichuan` and load the native "
                    "Llama it writes")
