"""The `qilin` command: reproduce (run the notebooks), train (one stage, in-process or multi-process), data (the data stage alone), plan (memory and time estimates), notebooks (pairs)."""

from __future__ import annotations

import argparse
import sys

from .config import parse_override


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qilin", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    rep = sub.add_parser("reproduce", help="execute the numbered notebooks headless, in order")
    rep.add_argument("--profile", default="tiny")
    rep.add_argument("--only", type=lambda s: s.split(","), help="e.g. 01,03")
    rep.add_argument("--from", dest="start", help="start at this notebook, e.g. 02")
    rep.add_argument("--force", action="store_true", help="rebuild stages even if cached")
    rep.add_argument("-p", "--param", type=parse_override, action="append", default=[],
                     help="papermill parameter key=value (repeatable)")
    rep.add_argument("--allow-dirty", action="store_true",
                     help="write committed results although the code differs from the commit")

    data = sub.add_parser("data", help="run the data stage without a notebook")
    data.add_argument("--profile", default="tiny")
    data.add_argument("--force", action="store_true")
    data.add_argument("--set", type=parse_override, action="append", default=[], help="config override a.b=value")

    from .train.launch import LAUNCHERS, add_stage_arguments

    train = sub.add_parser("train", help="run one training stage, on several processes when asked (or GPUs)")
    add_stage_arguments(train)
    train.add_argument("--launcher", choices=LAUNCHERS, default="auto",
                       help="auto: in-process on <= 1 GPU, accelerate on several GPUs, torchrun for CPU processes")
    train.add_argument("--nproc", type=int, help="processes to start (default: one per visible GPU)")

    ev = sub.add_parser("evaluate", help="evaluate every trained stage (notebook 05 without the notebook), or with "
                        "--model one checkpoint the repo did not train, under its own label")
    ev.add_argument("--profile", default="tiny")
    ev.add_argument("--set", type=parse_override, action="append", default=[], help="config override a.b=value")
    ev.add_argument("--model", help="a checkpoint directory or hub id to evaluate instead of the stages")
    ev.add_argument("--adapter", default="", help="with --model: a PEFT adapter directory merged into it")
    ev.add_argument("--name", help="with --model: the label of its results and table rows (default: the "
                    "directory's name; not a stage name)")
    ev.add_argument("--chat", action=argparse.BooleanOptionalAction, default=None,
                    help="with --model: prompts through its chat template (default: when its tokenizer has one)")
    ev.add_argument("--benchmarks", nargs="+", help="with --model: these benchmarks (default: the profile's)")

    rpt = sub.add_parser("report", help="write results/<profile>/REPORT.md from the run's files")
    rpt.add_argument("--profile", default="tiny")

    chk = sub.add_parser("check-results", help="compare the numbers of two result trees (committed vs fresh): "
                         "exactly when their numerics fingerprints match, else the claims within measured tolerances")
    chk.add_argument("committed", help="e.g. results/tiny of the checkout")
    chk.add_argument("fresh", help="the same tree written by a fresh run")

    tol = sub.add_parser("measure-tolerances", help="write qilin_lib/results_tolerances.json from trees that "
                         "differ from the committed one only in numerics")
    tol.add_argument("committed")
    tol.add_argument("variants", nargs="+")
    tol.add_argument("--how", required=True, help="how the variants were made (recorded in the file)")

    smoke = sub.add_parser("smoke-inputs", help="write the paper-smoke profile's inputs (a random Baichuan-format "
                           "checkpoint, a PubMedQA split) from ../shared into the artifact cache")
    smoke.add_argument("--force", action="store_true", help="rebuild them even if complete")
    conv = sub.add_parser("convert", help="convert a remote-code checkpoint to a native transformers one")
    conv.add_argument("kind", choices=["baichuan"], help="baichuan: Baichuan-7B -> Llama + fast tokenizer")
    conv.add_argument("src", help="the checkpoint directory (config.json, weights, tokenizer.model)")
    conv.add_argument("dst", help="a new or empty directory")

    from .plan import DEFAULT_GPU, DEFAULT_MFU, GPUS

    plan = sub.add_parser("plan", help="per-stage parameters, GPU memory, steps and hours of a profile "
                          "(estimates; no GPU, no hub)")
    plan.add_argument("--profile", default="tiny")
    plan.add_argument("--gpu", choices=sorted(GPUS), default=DEFAULT_GPU,
                      help="GPU whose dense bf16 peak the hours assume: " + ", ".join(
                          f"{key} {name} {peak / 1e12:g} TFLOP/s" for key, (name, peak) in GPUS.items()))
    plan.add_argument("--mfu", type=float, default=DEFAULT_MFU, help="assumed model FLOPs utilisation (default 0.4)")
    plan.add_argument("--corpus", action="append", default=[], metavar="KEY=VALUE",
                      help="corpus size instead of data_stats.json / the assumed ChiMed sizes: cpt_tokens, "
                      "sft_records, dpo_records or adapt_records (repeatable)")
    plan.add_argument("--set", type=parse_override, action="append", default=[], help="config override a.b=value")

    nbs = sub.add_parser("notebooks", help="keep the jupytext pairs in sync")
    nbs.add_argument("action", choices=["sync", "check"])
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if getattr(args, "profile", None):
        from .hub import set_hub_environment

        set_hub_environment(args.profile)
    if args.command == "reproduce":
        from .reporting import committed_results, git_state
        from .reproduce import NotebookFailed, run_notebooks

        git = git_state()
        if committed_results(args.profile) and git["code_dirty"] and not args.allow_dirty:
            print(f"[qilin] refusing to write the committed results/{args.profile}: the code differs from commit "
                  f"{git['commit'][:12]} ({', '.join(git['dirty_paths'])}); commit first, or pass --allow-dirty",
                  file=sys.stderr)
            return 2

        try:
            runs = run_notebooks(args.profile, args.only, args.start, args.force, dict(args.param))
        except NotebookFailed as err:
            print(f"[qilin] FAILED: {err}", file=sys.stderr)
            return 1
        total = sum(r.seconds for r in runs)
        print(f"[qilin] {len(runs)} notebook(s) in {total:.1f} s: " + ", ".join(f"{r.name} {r.seconds:.1f}s" for r in runs))
        from .report import build_report

        print(f"[qilin] report: {build_report(args.profile)}")
        return 0
    if args.command == "evaluate" and not args.model and (args.adapter or args.name or args.chat is not None
                                                          or args.benchmarks):
        raise SystemExit("qilin evaluate: --adapter, --name, --chat and --benchmarks go with --model")
    if args.command == "evaluate" and args.model:
        from .config import load_config
        from .evaluation.external import evaluate_external, external_model
        from .evaluation.tables import write_eval_tables
        from .report import build_report

        cfg = load_config(args.profile, dict(args.set))
        model = external_model(cfg, args.model, adapter=args.adapter, name=args.name, chat=args.chat)
        results = evaluate_external(cfg, model, args.benchmarks)
        write_eval_tables(cfg.name)
        print(f"[qilin] {len(results)} evaluation results for {model.name} (chat {model.chat}); "
              f"report: {build_report(cfg.name)}")
        return 0
    if args.command == "evaluate":
        from .config import load_config
        from .evaluation.runner import evaluate_all
        from .evaluation.tables import write_eval_tables
        from .train.adapt import adapt_after_sft

        adapt_after_sft(args.profile, dict(args.set))  # as notebook 05 does: a training stage, launched
        cfg = load_config(args.profile, dict(args.set))
        results = evaluate_all(cfg)
        write_eval_tables(cfg.name)
        print(f"[qilin] {len(results)} evaluation results for profile {cfg.name}")
        return 0
    if args.command == "report":
        from .report import build_report

        print(f"[qilin] report: {build_report(args.profile)}")
        return 0
    if args.command == "check-results":
        from .results_check import check_results

        report = check_results(args.committed, args.fresh)
        for line in report.problems + report.notes:
            print(line, file=sys.stderr)
        print(f"[qilin] mode {report.mode} (numerics committed {report.committed_numerics}, fresh "
              f"{report.fresh_numerics}): {len(report.problems)} difference(s)")
        return 1 if report.problems else 0
    if args.command == "measure-tolerances":
        from .results_check import measure_tolerances, write_tolerances

        measured = measure_tolerances(args.committed, args.variants, args.how)
        print(f"[qilin] {len(measured['families'])} metric families -> {write_tolerances(measured)}")
        return 0
    if args.command == "data":
        from .config import load_config
        from .data.stage import run_data_stage
        from .data.tables import composition_figure, write_data_tables

        cfg = load_config(args.profile, dict(args.set))
        result = run_data_stage(cfg, force=args.force)
        write_data_tables(result.stats, cfg.name)
        composition_figure(result.stats, cfg.name)
        print(f"[qilin] data stage {'reused' if result.reused else 'built'}: {result.path}")
        return 0
    if args.command == "train":
        from .train.launch import LaunchFailed, run_or_launch

        try:
            run = run_or_launch(args.stage, args.profile, dict(args.set), args.force, not args.no_progress,
                                nproc=args.nproc, launcher=args.launcher)
        except LaunchFailed as err:
            print(f"[qilin] FAILED: {err}", file=sys.stderr)
            return err.code or 1
        world = run.metrics.get("provenance", {}).get("world_size", 1)
        print(f"[qilin] {args.stage} {'reused' if run.reused else 'trained'} (world size {world}): {run.path}")
        return 0
    if args.command == "smoke-inputs":
        from .smoke import build_smoke_inputs

        print(f"[qilin] paper-smoke inputs: {build_smoke_inputs(force=args.force)}")
        return 0
    if args.command == "plan":
        from .plan import main as plan_main

        try:
            print(plan_main(args.profile, args.gpu, args.mfu, args.corpus, dict(args.set)), end="")
        except ValueError as err:
            print(f"[qilin] {err}", file=sys.stderr)
            return 2
        return 0
    if args.command == "convert":
        from .convert import convert_baichuan

        print(f"[qilin] converted {args.src} -> {convert_baichuan(args.src, args.dst)}")
        return 0
    from . import notebooks

    if args.action == "sync":
        for path in notebooks.sync():
            print(f"wrote {path}")
        return 0
    found = notebooks.check()
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
