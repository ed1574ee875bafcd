"""What every local `evaluate` module here shares, so that a module keeps only what is its own: its
description, citation, inputs, feature shape, source URL and the one call into `text_overlap` / `labels`.

No class lives here: `evaluate.load(path)` takes the first `Metric` subclass in the module it loads
(evaluate `loading.import_main_class`), which must be that module's own.
"""

import datasets
import evaluate

TOKENS = datasets.Sequence(datasets.Value("string", id="token"), id="sequence")  # one tokenised text

# The input shapes the modules take, by name.
FEATURES = {
    "strings": {"predictions": datasets.Value("string"), "references": datasets.Value("string")},
    "tokens": {"predictions": TOKENS, "references": TOKENS},
    "tokens, several references": {"predictions": TOKENS, "references": datasets.Sequence(TOKENS, id="references")},
    "tokens, no references": {"predictions": TOKENS},
}


def metric_info(description: str, citation: str, inputs: str, features: str, url: str) -> evaluate.MetricInfo:
    """The module's MetricInfo: `features` names an entry of FEATURES, `url` the code the module follows."""
    return evaluate.MetricInfo(description=description, citation=citation, inputs_description=inputs,
                               features=datasets.Features(FEATURES[features]), reference_urls=[url])
