"""Intent classification benchmark: `python bench/intents.py --train CSV --test CSV` prints one JSON object.

The figures are those of `voicebot.dialogue.evaluation.evaluate_intents` (which includes
"train_seconds": training, embeddings of the training set included) plus "total_seconds".
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from voicebot.config import default_models_dir
from voicebot.dialogue.evaluation import evaluate_intents
from voicebot.knowledge.embeddings import load_embedder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--train", type=Path, required=True)
    parser.add_argument("--test", type=Path, required=True)
    parser.add_argument("--models-dir", type=Path, default=None)
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime threads (the server uses 1)")
    args = parser.parse_args(argv)
    embedder = load_embedder(args.models_dir or default_models_dir(), threads=args.threads)
    start = time.perf_counter()
    result = evaluate_intents(args.train, args.test, embedder)
    result["total_seconds"] = round(time.perf_counter() - start, 1)
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
