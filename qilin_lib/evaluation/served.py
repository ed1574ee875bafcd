"""The served-engine backend: the Scorer's modes through an OpenAI-compatible server (vLLM, SGLang,
`transformers serve`) that the user starts in its own environment (README, "Served engine").

    scorer = ServedScorer.load(cfg, model_dir, chat=True)    # evaluation.backend: openai, base_url, served_model
    scorer.generate(prompts, max_new_tokens=32)              # POST {base_url}/completions, temperature 0
    scorer.continuation_logprobs(pairs)                      # echo + logprobs: the prompt's own token log-probs

Everything that decides a number stays on this side, as in the in-process Scorer: the chat template is
rendered here (`context`, with the local tokenizer of `model_dir`) and the raw text goes to the legacy
completions endpoint; contexts and continuations are tokenized here, a continuation's tokens being those it
adds after its context (lm-evaluation-harness's rule, Scorer._split_pairs), and sent as token ids, so the
server scores exactly the tokens the local scorer would.

Log-likelihoods use the completions API's `echo` + `logprobs` (the request lm-evaluation-harness's
`local-completions` model sends): with `prompt` = token ids, `echo: true, logprobs: 1, max_tokens: 1,
temperature: 0`, vLLM (`vllm/entrypoints/openai/protocol.py` CompletionRequest) and SGLang answer
`choices[i].logprobs.token_logprobs` = [null, log P(t1 | t0), ..., log P(t_n | ...), <the generated token's>],
one entry per prompt token (the first has no context) plus the generated one. A server that does not fill
`logprobs` for the prompt (transformers 5.x `transformers serve` ignores `echo` and `logprobs`:
UNUSED_LEGACY_COMPLETION_FIELDS in transformers/cli/serving/completion.py) is generation-only:
`supports_logprobs` is False, and the runner skips loglik, cloze, VoC and the prior/recall variants and
says so in each result's `protocol` (`skipped_modes`), never silently.

Engine-specific request fields are sent only where they change the result: `add_special_tokens: false`
when this tokenizer adds special tokens (a BOS) to plain text, which the local scorer never does, and
`stop_token_ids` when the scorer's stop tokens (qilin_lib.chat_templates.stop_token_ids) are more than the
model's generation-config EOS; both are vLLM/SGLang extensions (`transformers serve` rejects unknown fields).

Requests run concurrently on a bounded thread pool (`evaluation.served_concurrency`); an error names the
URL, the HTTP status and the request body (truncated).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from .intervals import IntervalSpec
from .scoring import Scorer


class ServedError(RuntimeError):
    """A request to the served engine failed: the message names the URL and the request."""


@dataclass
class ServedScorer(Scorer):
    """Scorer's interface (`context`, `generate`, `next_token_logprobs`, `continuation_logprobs`) over HTTP.
    `model` is None: nothing runs in-process; `tokenizer` is the served model's own (from its directory)."""
    model: object = None
    tokenizer: object = None
    base_url: str = ""
    served_model: str = ""          # the name the server knows the model by; "" = see __post_init__
    model_dir: str = ""             # the local directory of the served model (its tokenizer)
    concurrency: int = 8
    timeout: float = 600.0
    eos_token_id: object = None     # the model's generation_config.eos_token_id (an int or a list)
    supports_logprobs: bool | None = None   # None: probed on first use

    def __post_init__(self):
        self.base_url = self.base_url.rstrip("/")
        if not self.base_url:
            raise ValueError("evaluation.backend 'openai' needs evaluation.base_url (e.g. http://localhost:8000/v1)")
        if not self.max_length:
            self.max_length = self.tokenizer.model_max_length if self.tokenizer.model_max_length < 1e7 else 2048
        if self.chat and not getattr(self.tokenizer, "chat_template", None):
            raise ValueError("chat=True needs a tokenizer with a chat template")
        self._extra = {}
        if self.tokenizer("a")["input_ids"] != self.tokenizer("a", add_special_tokens=False)["input_ids"]:
            self._extra["add_special_tokens"] = False
        eos = self.eos_token_id if isinstance(self.eos_token_id, list) else [self.eos_token_id]
        if set(self._stop_ids()) - set(eos):
            self._extra["stop_token_ids"] = self._stop_ids()
        if not self.served_model:  # the model of this directory if the server lists it, else its only model
            ids = [m["id"] for m in self._request("GET", "/models")["data"]]
            mine = [i for i in ids if self.model_dir and Path(i) == Path(self.model_dir)]
            if not mine and len(ids) != 1:
                raise ServedError(f"{self.base_url}/models lists {ids}: set evaluation.served_model to the one "
                                  f"that serves {self.model_dir}")
            self.served_model = (mine or ids)[0]
        if self.supports_logprobs is None:
            self.supports_logprobs = self._probe_logprobs()

    @classmethod
    def load(cls, cfg, model_dir: str | Path, *, chat: bool = False, **kw) -> ServedScorer:
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        ec = cfg.evaluation
        tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
        if not kw.get("max_length"):  # the model's window, as Scorer takes it (not the tokenizer's model_max_length)
            kw["max_length"] = getattr(AutoConfig.from_pretrained(str(model_dir)), "max_position_embeddings", 0)
        try:
            eos = GenerationConfig.from_pretrained(str(model_dir)).eos_token_id
        except OSError:  # no generation_config.json
            eos = tokenizer.eos_token_id
        return cls(None, tokenizer, chat=chat, chat_template_kwargs=cfg.model.chat_template_kwargs,
                   intervals=IntervalSpec.from_config(cfg), base_url=ec.base_url, served_model=ec.served_model,
                   concurrency=ec.served_concurrency, eos_token_id=eos, model_dir=str(model_dir), **kw)

    @property
    def device(self) -> torch.device:
        return torch.device("cpu")

    def _stop_ids(self) -> list[int]:
        from ..chat_templates import stop_token_ids

        return stop_token_ids(self.tokenizer, self.eos_token_id, **self.chat_template_kwargs)

    def protocol(self) -> dict:
        """What the runner stores beside every number this backend produced."""
        return {"backend": "openai", "base_url": self.base_url, "served_model": self.served_model,
                "prompt_logprobs": bool(self.supports_logprobs), "extra_request_fields": sorted(self._extra)}

    # -------------------------------------------------------------------------------- HTTP
    def _request(self, method: str, path: str, body: dict | None = None) -> dict:
        url = self.base_url + path
        data = json.dumps(body, ensure_ascii=False).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")[:500]
            raise ServedError(f"{method} {url} -> HTTP {e.code}: {detail}\nrequest: {_short(body)}") from e
        except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
            raise ServedError(f"{method} {url} failed ({e}); is the server running?\nrequest: {_short(body)}") from e

    def _completions(self, bodies: Sequence[dict], desc: str) -> list[dict]:
        """POST /completions for each body, `concurrency` at a time; answers in input order."""
        with ThreadPoolExecutor(max_workers=max(1, self.concurrency)) as pool:
            jobs = pool.map(lambda b: self._request("POST", "/completions", b), bodies)
            return list(tqdm(jobs, total=len(bodies), desc=desc, disable=not self.progress, leave=False))

    def _probe_logprobs(self) -> bool:
        """Whether the server returns the prompt's token log-probabilities (echo + logprobs)."""
        ids = self.tokenizer("答案：A", add_special_tokens=False)["input_ids"] or [self.tokenizer.eos_token_id]
        try:
            lps = self._prompt_logprobs([ids], "probe")[0]
        except (ServedError, KeyError, TypeError, IndexError, ValueError):
            return False
        return len(lps) == len(ids) and all(isinstance(x, float) for x in lps[1:])

    def _prompt_logprobs(self, prompts: Sequence[list[int]], desc: str) -> list[list]:
        """Per prompt (token ids), log P(token_k | tokens before k) for every prompt token (None first)."""
        bodies = [{"model": self.served_model, "prompt": ids, "max_tokens": 1, "temperature": 0, "echo": True,
                   "logprobs": 1, **self._extra} for ids in prompts]
        out = []
        for ids, answer in zip(prompts, self._completions(bodies, desc)):
            token_lps = answer["choices"][0]["logprobs"]["token_logprobs"]
            out.append([None if x is None else float(x) for x in token_lps[: len(ids)]])
        return out

    def _need_logprobs(self, what: str):
        if not self.supports_logprobs:
            raise ServedError(f"{self.base_url}/completions returns no prompt log-probabilities (echo + logprobs): "
                              f"{what} needs them; use vLLM or SGLang, or drop the mode")

    # -------------------------------------------------------------------------------- modes
    def generate(self, prompts: Sequence[str], max_new_tokens: int = 32, desc: str = "generate",
                 first_token_candidates: Sequence[str] | None = None):
        """Greedy continuations (temperature 0) of already-wrapped prompts, as text; prompts longer than the
        window lose their beginning as in Scorer (cut in tokens, sent as the decoded text)."""
        budget = self.max_length - max_new_tokens
        rows = [self._encode(p, budget) for p in prompts]           # counts the truncated ones, as Scorer does
        texts = [p if len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) <= budget
                 else self.tokenizer.decode(r) for p, r in zip(prompts, rows)]
        bodies = [{"model": self.served_model, "prompt": t, "max_tokens": max_new_tokens, "temperature": 0,
                   **self._extra} for t in texts]
        out = [a["choices"][0]["text"].strip() for a in self._completions(bodies, desc)]
        if not first_token_candidates:
            return out
        # Scorer reads these from its first decoding step, i.e. after the prompt as generation cut it, unless the
        # candidates share leading tokens (then a pass of their own, next_token_logprobs)
        cand = self._first_step_tokens(prompts, first_token_candidates)
        if cand is None:
            return out, self.next_token_logprobs(prompts, first_token_candidates, desc=f"{desc} (letters)")
        self._need_logprobs("next-token scoring (loglik)")
        return out, self._next_token(rows, cand, f"{desc} (letters)")

    def next_token_logprobs(self, contexts: Sequence[str], candidates: Sequence[str],
                            desc: str = "next token") -> torch.Tensor:
        """As Scorer.next_token_logprobs: each candidate's token is appended to the context and its echoed
        log-probability read back (one prompt per context and candidate)."""
        self._need_logprobs("next-token scoring (loglik)")
        rows, tokens, _ = self._letter_rows(contexts, candidates)
        return self._next_token(rows, tokens, desc)

    def _next_token(self, rows: list[list[int]], tokens: list[list[int]], desc: str) -> torch.Tensor:
        """log P(token | row) for each row's candidate tokens: [len(rows), candidates per row]."""
        rows = [r or [self.tokenizer.eos_token_id] for r in rows]
        lps = self._prompt_logprobs([r + [t] for r, ts in zip(rows, tokens) for t in ts], desc)
        return torch.tensor([lp[-1] for lp in lps]).reshape(len(rows), -1)

    def _score_continuations(self, pairs: Sequence[tuple[str, str]], desc: str) -> list[tuple[float, int]]:
        """Summed echoed log-probabilities of the continuation tokens after the context tokens."""
        self._need_logprobs("continuation scoring (cloze, VoC)")
        context_ids, conts = self._split_pairs(pairs)
        conts = [c[: self.max_length - 1] for c in conts]
        longest: dict[str, int] = {}  # a context is cut to leave room for its longest continuation, as in Scorer
        for (ctx, _), cont in zip(pairs, conts):
            longest[ctx] = max(longest.get(ctx, 0), len(cont))
        encoded = {ctx: self._fit(context_ids[ctx], self.max_length - n) or [self.tokenizer.eos_token_id]
                   for ctx, n in longest.items()}
        ctxs = [encoded[ctx] for ctx, _ in pairs]
        todo = [i for i, cont in enumerate(conts) if cont]
        lps = self._prompt_logprobs([ctxs[i] + conts[i] for i in todo], desc)
        out: list[tuple[float, int]] = [(0.0, 0)] * len(pairs)
        for i, lp in zip(todo, lps):
            out[i] = (float(sum(lp[len(ctxs[i]):])), len(conts[i]))
        return out


def _short(body: dict | None, limit: int = 300) -> str:
    text = json.dumps(body, ensure_ascii=False) if body is not None else "(no body)"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


@contextmanager
def transformers_serve(model_dir: str | Path, log_path: str | Path, timeout_s: float = 180) -> Iterator[str]:
    """`transformers serve <model_dir>` (transformers' own OpenAI-compatible server, CPU, float32) on a free
    local port for the duration of the block; yields its base URL. For this machine's checks of the served
    backend (tests/test_served.py, benchmarks/bench_eval.py --served): on GPUs, serve with vLLM or SGLang
    (README, "Served engine"). A server that does not answer within `timeout_s` is an error quoting its log."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    with open(log_path, "w") as log:
        proc = subprocess.Popen([sys.executable, "-m", "transformers.cli.transformers", "serve", str(model_dir),
                                 "--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"],
                                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HF_HUB_OFFLINE": "1"})
        try:
            deadline = time.time() + timeout_s
            while True:
                try:
                    urllib.request.urlopen(url + "/models", timeout=5).read()
                    break
                except OSError:
                    if proc.poll() is not None or time.time() > deadline:
                        log.flush()
                        raise ServedError(f"transformers serve {model_dir} did not start; its log {log_path}:\n"
                                          f"{Path(log_path).read_text()[-2000:]}") from None
                    time.sleep(0.5)
            yield url
        finally:
            proc.terminate()
            proc.wait(timeout=30)
