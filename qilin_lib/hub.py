"""Hub access per profile: a profile that needs nothing from the Hugging Face Hub runs with the hub off.

The tiny profile builds everything itself, yet TRL's telemetry and datasets' metadata checks would still
contact the hub from SFT, DPO and task adaptation. `qilin` therefore sets HF_HUB_OFFLINE /
HF_DATASETS_OFFLINE before anything imports huggingface_hub (which reads them at import) for profiles that
name no hub model or file; telemetry is off for every profile. Child processes (papermill kernels,
launched workers) inherit the environment. Variables the user set are left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

HUB_PREFIX = "hf://"


def needs_hub(cfg) -> bool:
    """A hub model id, or a data source / benchmark that is an hf:// file or a hub dataset id."""
    model = cfg.model.name_or_path
    if model != "tiny" and not Path(model).expanduser().exists():
        return True
    sources = cfg.data.sources if cfg.data.generator == "sources" else []
    paths = [spec["path"] for spec in sources] + [spec["path"] for spec in cfg.data.benchmarks.values()]
    return any(_on_hub(str(path)) for path in paths)


def _on_hub(path: str) -> bool:
    # hf://datasets/... files, or an id such as ceval/ceval-exam that names no local directory
    return path.startswith(HUB_PREFIX) or (bool(re.fullmatch(r"[\w.-]+/[\w.-]+", path))
                                          and not Path(path).expanduser().exists())


def set_hub_environment(profile: str, env: dict | None = None) -> dict[str, str]:
    """Telemetry off always; the hub off where the profile needs none. Returns what was set."""
    from .config import load_config

    env = os.environ if env is None else env
    wanted = {"HF_HUB_DISABLE_TELEMETRY": "1"}
    if not needs_hub(load_config(profile)):
        wanted |= {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    applied = {k: v for k, v in wanted.items() if k not in env}
    env.update(applied)
    return applied
