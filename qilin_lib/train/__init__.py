"""Training stages of Qilin-Med: DCPT (02), LoRA SFT (03), LoRA DPO (04), and AntGLM-Med's task adaptation (05).

Each `run_<stage>(cfg, ...)` runs in-process on one device and fills in the skeleton of `common` (setup, cache
decision, train with resume, publish) with what is its own; `qilin train <stage>` runs the same function under
`accelerate launch` / `torchrun` for several GPUs (see `qilin_lib.train.launch`).
"""
