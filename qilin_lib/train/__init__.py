"""Training stages of Qilin-Med: DCPT (02), LoRA SFT (03), LoRA DPO (04).

Each `run_<stage>(cfg, ...)` runs in-process on one device; `qilin train <stage>` runs the same function
under `accelerate launch` / `torchrun` for several GPUs (see `qilin_lib.train.launch`).
"""
