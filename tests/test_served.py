"""The served backend gives the in-process Scorer's answers.

- Generation: against a real OpenAI-compatible server, `transformers serve` (transformers' own, needs the
  serving extras fastapi/uvicorn/openai in requirements.txt), started here on the tiny model.
- Log-likelihoods: `transformers serve` (5.x) ignores `echo`/`logprobs`, and vLLM/SGLang do not run on this
  CPU-only machine, so the echo + logprobs path is tested against a STUB: a few lines of http.server below
  that answer in vLLM's completions shape from the same tiny model. Not a real server.
"""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import torch
from evalkit import tiny_model_and_tokenizer
from test_eval_pipeline import real_cfg

from qilin_lib.evaluation.runner import EvalModel, evaluate_model
from qilin_lib.evaluation.scoring import Scorer
from qilin_lib.evaluation.served import ServedError, ServedScorer
from qilin_lib.evaluation.served import transformers_serve as serve_locally

PROMPTS = ["肺炎的症状有", "答案：", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。", "高血压患者常有",
           "糖尿病的常用药物包括", "A B C D 答案：", "Context: Question: Answer:", "判断：正确"]
PAIRS = [("肺炎的症状有", "咳嗽"), ("肺炎的症状有", "发热、头痛"), ("答案：", "A"), ("高血压", "患者常有头痛、头晕。"),
         ("肺炎的症状有", "")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    model, tokenizer = tiny_model_and_tokenizer(seed=3)
    # The default init (std 0.02) makes a random model repeat its last token (chat: an empty answer); wider
    # weights give varied greedy outputs (byte fragments, stop tokens), a sharper equality test.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() > 1:
                p.normal_(0, 0.3, generator=g)
    path = tmp_path_factory.mktemp("served") / "tiny"
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def local(tiny_dir):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_dir, dtype=torch.float32)
    return model, AutoTokenizer.from_pretrained(tiny_dir)


@pytest.fixture(scope="module")
def transformers_serve(tiny_dir, tmp_path_factory):
    """`transformers serve <tiny>` on a free port; its base URL."""
    from transformers.utils.import_utils import is_serve_available

    if not is_serve_available():
        pytest.skip("transformers serve needs fastapi, uvicorn and openai (requirements.txt); not installed here")
    with serve_locally(tiny_dir, tmp_path_factory.mktemp("serve_log") / "serve.log") as url:
        yield url


@pytest.mark.parametrize("chat", [False, True], ids=["raw", "chat"])
def test_served_generation_equals_in_process(local, tiny_dir, transformers_serve, chat):
    model, tokenizer = local
    inproc = Scorer(model, tokenizer, chat=chat, batch_size=4, progress=False)
    served = ServedScorer(None, tokenizer, chat=chat, progress=False, base_url=transformers_serve,
                          eos_token_id=model.generation_config.eos_token_id, model_dir=str(tiny_dir), concurrency=4)
    assert served.served_model == str(tiny_dir)
    assert served.supports_logprobs is False   # transformers serve ignores echo/logprobs: generation only
    contexts = [inproc.context(p) for p in PROMPTS]
    assert served.generate(contexts, max_new_tokens=12) == inproc.generate(contexts, max_new_tokens=12)
    with pytest.raises(ServedError, match="no prompt log-probabilities"):
        served.continuation_logprobs(PAIRS)


# ------------------------------------------------------------------------ the log-likelihood path (stub)
class _VLLMStub(BaseHTTPRequestHandler):
    """/v1/models and /v1/completions with `prompt` = token ids, `echo` + `logprobs` answered as vLLM does:
    choices[0].logprobs.token_logprobs = [None, log P(t1|t0), ...] + the greedy next token's."""
    model = tokenizer = None

    def log_message(self, *args):
        pass

    def _send(self, obj: dict):
        data = json.dumps(obj).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._send({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert body["temperature"] == 0, body
        if isinstance(body["prompt"], str):   # generation: greedy, cut at the generation config's EOS
            ids = self.tokenizer(body["prompt"])["input_ids"]
            with torch.no_grad():
                out = self.model.generate(torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                          do_sample=False, max_new_tokens=body["max_tokens"])[0, len(ids):].tolist()
            stops = self.model.generation_config.eos_token_id
            out = out[: next((k for k, t in enumerate(out) if t in stops), len(out))]
            return self._send({"object": "text_completion", "choices": [
                {"index": 0, "text": self.tokenizer.decode(out, skip_special_tokens=True)}]})
        assert body["echo"] and body["logprobs"] == 1, body
        ids = body["prompt"]
        with torch.no_grad():
            lp = torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), -1)
        nxt = int(lp[-1].argmax())
        token_lps = [None] + [float(lp[k - 1, t]) for k, t in enumerate(ids) if k] + [float(lp[-1, nxt])]
        self._send({"object": "text_completion", "choices": [{"index": 0, "text": "", "logprobs": {
            "token_logprobs": token_lps, "tokens": [str(t) for t in ids + [nxt]]}}]})


@pytest.fixture(scope="module")
def stub(local):
    _VLLMStub.model, _VLLMStub.tokenizer = local
    server = ThreadingHTTPServer(("127.0.0.1", 0), _VLLMStub)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_stub_logprobs_equal_in_process(local, stub):
    model, tokenizer = local
    inproc = Scorer(model, tokenizer, batch_size=2, progress=False)
    served = ServedScorer(None, tokenizer, progress=False, base_url=stub,
                          eos_token_id=model.generation_config.eos_token_id, concurrency=3)
    assert served.supports_logprobs and served.served_model == "stub"
    for (a, n), (b, m) in zip(served.continuation_logprobs(PAIRS), inproc.continuation_logprobs(PAIRS)):
        assert n == m and a == pytest.approx(b, abs=1e-4)
    contexts = ["答案：", "以下是中国关于临床医学考试的单项选择题，请选出其中的正确答案。答案："]
    assert torch.allclose(served.next_token_logprobs(contexts, list("ABCD")),
                          inproc.next_token_logprobs(contexts, list("ABCD")), atol=1e-4)


def test_errors_name_the_url_and_request(local):
    _, tokenizer = local
    url = f"http://127.0.0.1:{_free_port()}/v1"   # nothing listens there
    with pytest.raises(ServedError, match=f"GET {url}/models failed"):
        ServedScorer(None, tokenizer, progress=False, base_url=url, eos_token_id=tokenizer.eos_token_id)
    served = ServedScorer(None, tokenizer, progress=False, base_url=url, served_model="m",
                          eos_token_id=tokenizer.eos_token_id, supports_logprobs=False)
    with pytest.raises(ServedError, match=rf"POST {url}/completions failed.*\nrequest: .*答案："):
        served.generate(["答案："], max_new_tokens=2)


# ------------------------------------------------------------------------------- through the runner
def _run(cfg, model_dir, backend: str, url: str = "") -> dict:
    cfg.evaluation.backend, cfg.evaluation.base_url = backend, url
    results = evaluate_model(cfg, EvalModel("ext", str(model_dir), chat=False), ["cmexam", "pubmedqa"],
                             progress=False, voc=True)
    return {r["task"]: r for r in results}


def _predictions(sandbox, task: str) -> list[dict]:
    path = sandbox / "results" / "paper" / "predictions" / f"ext_{task}.jsonl"
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def test_runner_on_transformers_serve_generates_the_same_and_records_what_it_skipped(
        shared_data, sandbox, tiny_dir, transformers_serve):
    cfg = real_cfg(shared_data)
    local = _run(cfg, tiny_dir, "local")
    local_preds = {t: _predictions(sandbox, t) for t in ("cmexam", "pubmedqa")}
    served = _run(cfg, tiny_dir, "openai", transformers_serve)
    assert set(served) == {"cmexam", "pubmedqa"}                 # VoC needs log-probabilities: not run
    for task in ("cmexam", "pubmedqa"):
        protocol = served[task]["protocol"]
        assert protocol["backend"] == "openai" and protocol["prompt_logprobs"] is False
        assert set(protocol["skipped_modes"]) == {"loglik", "cloze", "voc"}
        assert set(served[task]["metrics"]) == {"generate"} | ({"generate_explanation"} if task == "cmexam" else set())
        assert served[task]["metrics"]["generate"] == local[task]["metrics"]["generate"]
        generated = [r for r in local_preds[task] if r["mode"] == "generate"]
        assert _predictions(sandbox, task) == generated and len(generated) == served[task]["n_items"]


def test_runner_on_the_logprob_stub_gives_every_mode_the_local_numbers(shared_data, sandbox, tiny_dir, local, stub):
    """The full runner (generate, loglik, cloze, VoC) through the vLLM-shaped STUB: the metrics equal the
    in-process run's (scores are rounded to 4 decimals in the predictions; accuracies must match)."""
    cfg = real_cfg(shared_data)
    here = _run(cfg, tiny_dir, "local")
    there = _run(cfg, tiny_dir, "openai", stub)
    assert set(there) == set(here) == {"cmexam", "pubmedqa", "cmexam_voc", "pubmedqa_voc"}
    for task in here:
        assert there[task]["protocol"]["prompt_logprobs"] is True and "skipped_modes" not in there[task]["protocol"]
        assert there[task]["metrics"] == here[task]["metrics"], task
