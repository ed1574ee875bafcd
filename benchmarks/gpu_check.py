"""One-GPU check of the paper recipe's stages on a random Baichuan-7B-shaped model, beside `qilin plan`.

    python benchmarks/gpu_check.py                       # one GPU, Baichuan-7B shape, bf16, sdpa (< 8 min)
    python benchmarks/gpu_check.py --device cpu --small  # the same code at toy size on CPU (~20 s)

No hub access: the model is transformers' LlamaForCausalLM with Baichuan-7B's shape as qilin_lib.convert
converts it (hidden 4096, 32 layers, 32 heads, intermediate 11008, vocab 64000, rms eps 1e-6, 4096 positions),
randomly initialised; the inputs are random token ids. Stages, at the `paper` profile's per-device settings:

1. DCPT: full-parameter, gradient checkpointing, batch 1 x block 1024, AdamW; through DeepSpeed ZeRO-2
   (qilin_lib/configs/deepspeed_zero2.json with its "auto" values filled) when DeepSpeed is importable and
   `qilin plan`'s ZeRO-2 estimate fits the device, else torch AdamW on the bf16 weights (the output says which
   and why: on one GPU ZeRO-2 shards nothing, and its 20 bytes/param make 140 GB for 7B).
2. SFT: LoRA r8/a32/dropout 0.05 on all linear layers (peft), 64 x (256 + 256) tokens, checkpointing, the loss
   through TRL's fused LM head, as TRL's SFTTrainer computes it.
3. DPO: LoRA r8/a16, 8 pairs x (256 + 256) (chosen and rejected in one batch of 16), the reference log-probs
   from the same model with its adapters disabled (no grad), the sigmoid DPO loss (beta 0.1) computed here by
   hand from TRL's fused-head log-probs.
4. Evaluation: batched greedy generation (8 prompts x 64 new tokens, model.generate) and log-likelihood
   scoring of 4-option multiple choice (8 questions; the option with the highest summed log-prob wins).

Each stage prints tokens/s, utilisation against the GPU's dense bf16 peak (table below, or --peak-tflops),
peak memory (torch.cuda.max_memory_allocated, reset per stage) and qilin_lib.plan's prediction for the same
setting: memory, and tokens/s at the plan's assumed MFU. FLOPs per token are the plan's (6N full / 4N LoRA,
+2N recompute, +2N DPO reference; 2N for a forward), so "MFU" here counts recomputation as the plan does.
A `RESULT stage=...` line per stage is for machines. Exits 1 on a non-finite loss.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qilin_lib import plan  # noqa: E402  (pins the CPU numerics before torch computes anything)
from qilin_lib.config import LoraConfig  # noqa: E402

# Dense bf16 peaks by device name (NVIDIA datasheets; the same table as qilin_lib.plan.GPUS).
PEAK_BY_NAME = (("H200", 989e12), ("H100", 989e12), ("A100", 312e12))
PLAN_MFU = plan.DEFAULT_MFU
GiB = plan.GiB

SMALL_SHAPE = plan.ModelShape(name="small", vocab=4096, hidden=256, layers=2, heads=4, kv_heads=4,
                              intermediate=688, max_positions=4096, rms_eps=1e-6, tie_embeddings=False,
                              source="gpu_check --small")


@dataclass(frozen=True)
class Sizes:
    """Per-device batch sizes and lengths: the paper profile's, or a CPU-sized version."""
    dcpt_batch: int
    block: int
    sft_batch: int
    sft_source: int
    sft_target: int
    dpo_pairs: int
    dpo_source: int
    dpo_target: int
    gen_prompts: int
    gen_prompt_len: int
    gen_new_tokens: int
    mcq_questions: int
    mcq_prompt_len: int
    mcq_option_len: int


PAPER_SIZES = Sizes(dcpt_batch=1, block=1024, sft_batch=64, sft_source=256, sft_target=256, dpo_pairs=8,
                    dpo_source=256, dpo_target=256, gen_prompts=8, gen_prompt_len=128, gen_new_tokens=64,
                    mcq_questions=8, mcq_prompt_len=240, mcq_option_len=16)
SMALL_SIZES = Sizes(dcpt_batch=2, block=64, sft_batch=4, sft_source=24, sft_target=24, dpo_pairs=2,
                    dpo_source=24, dpo_target=24, gen_prompts=4, gen_prompt_len=16, gen_new_tokens=8,
                    mcq_questions=4, mcq_prompt_len=24, mcq_option_len=4)
SFT_LORA = LoraConfig(enabled=True, r=8, alpha=32, dropout=0.05, target_modules="all-linear")
DPO_LORA = LoraConfig(enabled=True, r=8, alpha=16, dropout=0.05, target_modules="all-linear")
DPO_BETA = 0.1


class NonFiniteLoss(RuntimeError):
    pass


# ------------------------------------------------------------------------------------------- device
@dataclass
class Device:
    torch_device: torch.device
    dtype: torch.dtype
    peak_flops: float | None
    name: str

    @property
    def cuda(self) -> bool:
        return self.torch_device.type == "cuda"

    @property
    def d(self) -> int:
        return torch.finfo(self.dtype).bits // 8

    def sync(self) -> None:
        if self.cuda:
            torch.cuda.synchronize()

    def reset_peak(self) -> None:
        if self.cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()

    def peak_memory(self) -> int | None:
        return torch.cuda.max_memory_allocated() if self.cuda else None

    def free_memory(self) -> int | None:
        return torch.cuda.mem_get_info()[0] if self.cuda else None

    def autocast(self):
        # the HF Trainer's bf16=True: autocast around the forward (peft keeps LoRA weights fp32 on a bf16 base)
        if self.cuda and self.dtype == torch.bfloat16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()


def pick_device(name: str, peak_tflops: float | None) -> Device:
    if name == "cuda":
        if not torch.cuda.is_available():
            raise SystemExit("--device cuda: no CUDA device here (use --device cpu --small)")
        gpu = torch.cuda.get_device_name()
        peak = peak_tflops * 1e12 if peak_tflops else next((p for key, p in PEAK_BY_NAME if key in gpu), None)
        dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
        return Device(torch.device("cuda"), dtype, peak, gpu)
    # CPU: fp32 (half-precision CPU kernels are slow or missing); no peak unless given
    return Device(torch.device("cpu"), torch.float32, peak_tflops * 1e12 if peak_tflops else None, "cpu")


# -------------------------------------------------------------------------------------------- model
def build_model(shape: plan.ModelShape, device: Device):
    """A random LlamaForCausalLM of `shape`, created directly on the device in its dtype, sdpa attention."""
    from transformers import LlamaForCausalLM

    config = plan.llama_config(shape)
    config._attn_implementation = "sdpa"
    config.use_cache = False
    previous = torch.get_default_dtype()
    torch.set_default_dtype(device.dtype)
    try:
        with torch.device(device.torch_device):
            torch.manual_seed(0)
            model = LlamaForCausalLM(config)
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = 0
    return model


def add_fused_head(model) -> None:
    """TRL's fused LM head, as its SFT and DPO trainers install it (before peft wraps the model)."""
    from trl.trainer.utils import add_fused_lm_head

    add_fused_lm_head(model)


def with_lora(model, lora: LoraConfig):
    from peft import get_peft_model

    from qilin_lib.modeling import lora_config

    peft_model = get_peft_model(model, lora_config(lora))
    peft_model.enable_input_require_grads()  # what transformers does for PEFT + gradient checkpointing
    return peft_model


def random_ids(batch: int, length: int, vocab: int, device: Device, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(3, vocab, (batch, length), generator=generator).to(device.torch_device)


def check_finite(loss: torch.Tensor, stage: str) -> float:
    value = float(loss.detach().float())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"{stage}: loss {value}")
    return value


# ------------------------------------------------------------------------------------------- result
@dataclass
class StageResult:
    stage: str
    setting: str
    tokens: int
    seconds: float
    flops_per_token: float
    peak_memory: int | None
    predicted_memory: int | None
    loss: float | None
    note: str = ""

    def tokens_per_second(self) -> float:
        return self.tokens / self.seconds

    def utilisation(self, device: Device) -> float | None:
        return self.flops_per_token * self.tokens_per_second() / device.peak_flops if device.peak_flops else None

    def predicted_tokens_per_second(self, device: Device) -> float | None:
        return PLAN_MFU * device.peak_flops / self.flops_per_token if device.peak_flops else None


def timed_steps(step, steps: int, device: Device) -> tuple[float, float]:
    """One untimed warm-up step (allocation, kernel selection), then `steps` timed ones: (seconds, last loss)."""
    loss = step()
    device.sync()
    start = time.perf_counter()
    for _ in range(steps):
        loss = step()
    device.sync()
    return time.perf_counter() - start, loss


def predicted(stage: str, shape: plan.ModelShape, device: Device, *, sequences: int, seq_len: int,
              lora: LoraConfig | None, zero2: bool) -> tuple[int, float]:
    """qilin plan's memory and FLOPs per token for this setting (one device)."""
    total, trainable = plan.count_parameters(shape, lora)
    memory = plan.stage_memory(stage, shape, sequences=sequences, seq_len=seq_len, lora=lora,
                               gradient_checkpointing=stage in ("dcpt", "sft", "dpo"), d=device.d,
                               on_gpu=device.cuda, total_params=total, trainable_params=trainable, num_gpus=1,
                               zero2=zero2, param_bytes=device.d)
    flops = plan.training_flops_per_token(stage, total, trainable, lora is not None, True)
    return memory.total, flops


# ------------------------------------------------------------------------------------------- stages
def deepspeed_config(shape: plan.ModelShape, device: Device, steps: int, lr: float, batch: int) -> dict:
    """The shipped ZeRO-2 config with its "auto" values filled as the HF Trainer fills them."""
    config = json.loads((Path(plan.__file__).parent / "configs" / "deepspeed_zero2.json").read_text())
    config["bf16"]["enabled"] = device.dtype == torch.bfloat16
    config["fp16"]["enabled"] = False
    config["zero_optimization"]["reduce_bucket_size"] = shape.hidden * shape.hidden
    config["scheduler"]["params"] = {"warmup_min_lr": lr, "warmup_max_lr": lr, "warmup_num_steps": 1,
                                     "total_num_steps": steps + 2}
    config.update(gradient_accumulation_steps=1, gradient_clipping=1.0, train_batch_size=batch,
                  train_micro_batch_size_per_gpu=batch)
    return config


def choose_deepspeed(mode: str, device: Device, zero2_memory: int) -> tuple[bool, str]:
    if mode == "off":
        return False, "torch AdamW (--deepspeed off)"
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            import deepspeed  # noqa: F401
    except ImportError:
        if mode == "on":
            raise SystemExit("--deepspeed on: deepspeed is not importable")
        return False, "torch AdamW (deepspeed is not installed)"
    if mode == "auto" and not device.cuda:
        return False, "torch AdamW (DeepSpeed on CPU JIT-builds a comm op, ~30 s: --deepspeed on to use it)"
    free = device.free_memory()
    if mode == "auto" and free is not None and zero2_memory > 0.92 * free:
        return False, (f"torch AdamW on the bf16 weights: the plan's ZeRO-2 estimate on 1 GPU "
                       f"({zero2_memory / GiB:.1f} GiB) exceeds the {free / GiB:.1f} GiB free")
    return True, "DeepSpeed ZeRO-2 (qilin_lib/configs/deepspeed_zero2.json)"


def init_deepspeed(model, config: dict, lr: float):
    import deepspeed

    for key, value in {"RANK": "0", "WORLD_SIZE": "1", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1"}.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MASTER_PORT", str(29500 + os.getpid() % 1000))
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    engine, *_ = deepspeed.initialize(model=model, optimizer=optimizer, config=config)
    return engine


def run_dcpt(shape, sizes: Sizes, device: Device, steps: int, deepspeed_mode: str) -> StageResult:
    lr = 2e-4
    zero2_memory, flops = predicted("dcpt", shape, device, sequences=sizes.dcpt_batch, seq_len=sizes.block,
                                    lora=None, zero2=True)
    use_deepspeed, how = choose_deepspeed(deepspeed_mode, device, zero2_memory)
    memory, _ = predicted("dcpt", shape, device, sequences=sizes.dcpt_batch, seq_len=sizes.block, lora=None,
                          zero2=use_deepspeed)
    model = build_model(shape, device)
    model.gradient_checkpointing_enable()
    model.train()
    ids = random_ids(sizes.dcpt_batch, sizes.block, shape.vocab, device, seed=1)
    if use_deepspeed:
        engine = init_deepspeed(model, deepspeed_config(shape, device, steps, lr, sizes.dcpt_batch), lr)

        def step():
            loss = engine(input_ids=ids, labels=ids).loss
            engine.backward(loss)
            engine.step()
            return check_finite(loss, "dcpt")
    else:
        # fused AdamW on CUDA: no foreach temporaries the size of the weights; moments in the weights' dtype
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, fused=device.cuda, foreach=False)

        def step():
            with device.autocast():
                loss = model(input_ids=ids, labels=ids).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return check_finite(loss, "dcpt")

    seconds, loss = timed_steps(step, steps, device)
    result = StageResult("dcpt", f"full, checkpointing, {sizes.dcpt_batch} x {sizes.block}, {how}",
                         steps * sizes.dcpt_batch * sizes.block, seconds, flops, device.peak_memory(), memory, loss)
    return result


def run_sft(model, shape, sizes: Sizes, device: Device, steps: int) -> StageResult:
    seq_len = sizes.sft_source + sizes.sft_target
    memory, flops = predicted("sft", shape, device, sequences=sizes.sft_batch, seq_len=seq_len, lora=SFT_LORA,
                              zero2=False)
    peft_model = with_lora(model, SFT_LORA)
    peft_model.gradient_checkpointing_enable()
    peft_model.train()
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=2e-5)
    ids = random_ids(sizes.sft_batch, seq_len, shape.vocab, device, seed=2)
    labels = ids.clone()
    labels[:, :sizes.sft_source] = -100  # loss on the answer only

    def step():
        with device.autocast():
            loss = peft_model(input_ids=ids, labels=labels, fused_lm_head=True).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return check_finite(loss, "sft")

    seconds, loss = timed_steps(step, steps, device)
    result = StageResult("sft", f"LoRA r8 all-linear, checkpointing, {sizes.sft_batch} x {seq_len}",
                         steps * sizes.sft_batch * seq_len, seconds, flops, device.peak_memory(), memory, loss)
    peft_model.unload().disable_input_require_grads()  # the base model back, adapters removed
    return result


def run_dpo(model, shape, sizes: Sizes, device: Device, steps: int) -> StageResult:
    seq_len = sizes.dpo_source + sizes.dpo_target
    sequences = 2 * sizes.dpo_pairs  # chosen and rejected in one batch, as TRL concatenates them
    memory, flops = predicted("dpo", shape, device, sequences=sequences, seq_len=seq_len, lora=DPO_LORA,
                              zero2=False)
    peft_model = with_lora(model, DPO_LORA)
    peft_model.gradient_checkpointing_enable()
    peft_model.train()
    optimizer = torch.optim.AdamW([p for p in peft_model.parameters() if p.requires_grad], lr=2e-5)
    ids = random_ids(sequences, seq_len, shape.vocab, device, seed=3)
    ids[sizes.dpo_pairs:, :sizes.dpo_source] = ids[:sizes.dpo_pairs, :sizes.dpo_source]  # shared prompts
    labels = ids.clone()
    labels[:, :sizes.dpo_source] = -100

    def sequence_logps(**kwargs) -> torch.Tensor:
        return peft_model(input_ids=ids, labels=labels, fused_lm_head=True, **kwargs).log_probs.sum(-1)

    def step():
        with device.autocast():
            policy = sequence_logps()
            with torch.no_grad(), peft_model.disable_adapter():
                reference = sequence_logps()
        chosen, rejected = (policy - reference).float().chunk(2)
        # DPO (Rafailov et al. 2023), sigmoid loss: -log sigmoid(beta x (chosen margin - rejected margin))
        loss = -torch.nn.functional.logsigmoid(DPO_BETA * (chosen - rejected)).mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        return check_finite(loss, "dpo")

    seconds, loss = timed_steps(step, steps, device)
    result = StageResult("dpo", f"LoRA r8 all-linear, checkpointing, {sizes.dpo_pairs} pairs x {seq_len}, "
                         "reference forward with adapters disabled", steps * sequences * seq_len, seconds, flops,
                         device.peak_memory(), memory, loss)
    peft_model.unload().disable_input_require_grads()
    return result


def inference_memory(shape: plan.ModelShape, device: Device, tokens_in_cache: int, scored_tokens: int) -> int:
    """Weights, the KV cache (2 x layers x tokens x kv width) and the fused head's tile: gpu_check's own
    arithmetic (qilin plan plans training only)."""
    total, _ = plan.count_parameters(shape)
    kv = 2 * shape.layers * tokens_in_cache * shape.kv_heads * shape.head_dim * device.d
    tile = min(scored_tokens, plan.TRL_TOKEN_TILE) * min(shape.vocab, plan.TRL_VOCAB_TILE) * device.d
    return total * device.d + kv + tile


def run_generation(model, shape, sizes: Sizes, device: Device, steps: int) -> StageResult:
    model.eval()
    model.config.use_cache = True
    prompts = random_ids(sizes.gen_prompts, sizes.gen_prompt_len, shape.vocab, device, seed=4)
    total, _ = plan.count_parameters(shape)
    memory = inference_memory(shape, device, sizes.gen_prompts * (sizes.gen_prompt_len + sizes.gen_new_tokens), 0)

    @torch.no_grad()
    def step():
        out = model.generate(input_ids=prompts, attention_mask=torch.ones_like(prompts), do_sample=False,
                             max_new_tokens=sizes.gen_new_tokens, min_new_tokens=sizes.gen_new_tokens,
                             pad_token_id=0)
        assert out.shape == (sizes.gen_prompts, sizes.gen_prompt_len + sizes.gen_new_tokens), out.shape
        return None

    seconds, _ = timed_steps(step, steps, device)
    new_tokens = steps * sizes.gen_prompts * sizes.gen_new_tokens
    return StageResult("generate", f"greedy, {sizes.gen_prompts} prompts x {sizes.gen_new_tokens} new tokens, "
                       "KV cache", new_tokens, seconds, 2 * total, device.peak_memory(), memory, None,
                       note="decoding is memory-bound: tokens/s counts new tokens, the prefill adds to the time")


def run_mcq(model, shape, sizes: Sizes, device: Device, steps: int) -> StageResult:
    model.eval()
    options = 4
    seq_len = sizes.mcq_prompt_len + sizes.mcq_option_len
    rows = sizes.mcq_questions * options
    ids = random_ids(rows, seq_len, shape.vocab, device, seed=5)
    ids = ids.view(sizes.mcq_questions, options, seq_len)
    ids[:, 1:, :sizes.mcq_prompt_len] = ids[:, :1, :sizes.mcq_prompt_len]  # one prompt, four options
    ids = ids.view(rows, seq_len)
    labels = ids.clone()
    labels[:, :sizes.mcq_prompt_len] = -100  # score the option's tokens only
    total, _ = plan.count_parameters(shape)
    memory = inference_memory(shape, device, 0, rows * seq_len)

    @torch.no_grad()
    def step():
        with device.autocast():
            logps = model(input_ids=ids, labels=labels, fused_lm_head=True, use_cache=False).log_probs
        choice = logps.float().sum(-1).view(sizes.mcq_questions, options).argmax(-1)
        assert choice.shape == (sizes.mcq_questions,)
        return check_finite(logps.float().sum(), "mcq")

    seconds, _ = timed_steps(step, steps, device)
    return StageResult("mcq", f"log-likelihood, {sizes.mcq_questions} questions x {options} options x {seq_len}",
                       steps * rows * seq_len, seconds, 2 * total, device.peak_memory(), memory, None)


# ------------------------------------------------------------------------------------------- output
def fmt_gib(n: int | None) -> str:
    return "n/a" if n is None else f"{n / GiB:.2f} GiB"


def report(result: StageResult, device: Device) -> str:
    utilisation = result.utilisation(device)
    predicted_tps = result.predicted_tokens_per_second(device)
    lines = [
        f"[{result.stage}] {result.setting}",
        f"    tokens/s {result.tokens_per_second():,.0f}"
        + (f" (plan at MFU {PLAN_MFU:g}: {predicted_tps:,.0f})" if predicted_tps else "")
        + (f", utilisation {utilisation:.3f} of {device.peak_flops / 1e12:g} TFLOP/s" if utilisation is not None
           else ", utilisation n/a (no peak for this device: --peak-tflops)"),
        f"    peak memory {fmt_gib(result.peak_memory)} (plan: {fmt_gib(result.predicted_memory)})"
        + (f", loss {result.loss:.4f}" if result.loss is not None else ""),
    ]
    if result.note:
        lines.append(f"    {result.note}")
    fields = {"stage": result.stage, "tokens_per_s": f"{result.tokens_per_second():.1f}",
              "mfu": f"{utilisation:.4f}" if utilisation is not None else "nan",
              "peak_mem_gib": f"{result.peak_memory / GiB:.3f}" if result.peak_memory is not None else "nan",
              "plan_mem_gib": f"{result.predicted_memory / GiB:.3f}",
              "loss": f"{result.loss:.6f}" if result.loss is not None else "none"}
    lines.append("RESULT " + " ".join(f"{k}={v}" for k, v in fields.items()))
    return "\n".join(lines)


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["cuda", "cpu"], default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--small", action="store_true", help="a toy shape and batch (for CPU)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per stage, after one warm-up step")
    parser.add_argument("--deepspeed", choices=["auto", "on", "off"], default="auto",
                        help="DCPT through DeepSpeed ZeRO-2: auto = on CUDA when the plan says it fits")
    parser.add_argument("--peak-tflops", type=float, help="the device's dense peak, when not in the table")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    device = pick_device(args.device, args.peak_tflops)
    shape = SMALL_SHAPE if args.small else plan.KNOWN_SHAPES["baichuan-inc/Baichuan-7B"]
    sizes = SMALL_SIZES if args.small else PAPER_SIZES
    print(f"gpu_check: {device.name}, {str(device.dtype).removeprefix('torch.')}, sdpa, shape {shape.name} "
          f"(hidden {shape.hidden}, {shape.layers} layers, vocab {shape.vocab}), random weights, "
          f"{args.steps} timed steps per stage; predictions from qilin_lib.plan", flush=True)
    start = time.perf_counter()
    results = []
    try:
        device.reset_peak()
        results.append(run_dcpt(shape, sizes, device, args.steps, args.deepspeed))
        print(report(results[-1], device), flush=True)
        gc.collect()  # the DCPT model and its optimizer states go before the base model of the LoRA stages
        device.reset_peak()
        base = build_model(shape, device)
        add_fused_head(base)
        for run in (run_sft, run_dpo, run_generation, run_mcq):
            device.reset_peak()
            results.append(run(base, shape, sizes, device, args.steps))
            print(report(results[-1], device), flush=True)
    except NonFiniteLoss as err:
        print(f"FAILED: non-finite loss: {err}", file=sys.stderr)
        return 1
    print(f"gpu_check: {len(results)} stages in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
