"""Runs inside lm-eval's own venv (bench_eval.py --lm-eval starts it): lm-evaluation-harness's `hf` backend on
tasks exported by lm_eval_task.py, timed with the model loaded once. Imports nothing from qilin_lib.

    python lm_eval_driver.py MODEL_DIR TASK_DIR OUT.json --tasks t1 t2 --batch-size 64 --max-length 256 --repeat 2

OUT.json: {"lm_eval": version, "load_seconds": s, "tasks": {task: {"seconds": [per repeat],
"loglikelihood_seconds": [per repeat: the part spent in lm.loglikelihood, tokenization and forward passes],
"samples": [{"doc_id": position in the task's file, "id", "logliks": [one per choice]}]}}}. A task's seconds are lm_eval.simple_evaluate's wall time
with the model object passed in: building the requests, the log-likelihood passes and the metrics, not the
model load (timed apart) or the Python start-up.
"""

import argparse
import json
import time
from importlib.metadata import version


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("task_dir")
    ap.add_argument("out")
    ap.add_argument("--tasks", nargs="+", required=True)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--max-length", type=int, default=0)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()

    import lm_eval
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    start = time.perf_counter()
    kw = {"max_length": args.max_length} if args.max_length else {}
    lm = HFLM(pretrained=args.model_dir, device="cpu", dtype="float32", batch_size=args.batch_size, **kw)
    out = {"lm_eval": version("lm_eval"), "transformers": version("transformers"), "torch": version("torch"),
           "load_seconds": time.perf_counter() - start, "tasks": {}}
    manager = TaskManager(include_path=args.task_dir)
    # lm.loglikelihood timed apart inside simple_evaluate: the scoring alone, the part our loglik pass does
    in_loglikelihood = []
    scoring = lm.loglikelihood

    def timed_loglikelihood(*a, **kw):
        start = time.perf_counter()
        out = scoring(*a, **kw)
        in_loglikelihood[-1] += time.perf_counter() - start
        return out

    lm.loglikelihood = timed_loglikelihood
    for task in args.tasks:
        seconds, loglikelihood_seconds, samples = [], [], []
        for _ in range(args.repeat):
            in_loglikelihood.append(0.0)
            start = time.perf_counter()
            result = lm_eval.simple_evaluate(model=lm, tasks=[task], task_manager=manager, log_samples=True,
                                             num_fewshot=0, verbosity="WARNING")
            seconds.append(time.perf_counter() - start)
            loglikelihood_seconds.append(in_loglikelihood[-1])
            samples = [{"doc_id": s["doc_id"], "id": s["doc"]["id"], "logliks": [float(r[0]) for r in s["filtered_resps"]]}
                       for s in result["samples"][task]]
        out["tasks"][task] = {"seconds": seconds, "loglikelihood_seconds": loglikelihood_seconds, "samples": samples}
    with open(args.out, "w", encoding="utf-8") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
