"""Release import at full scale: a synthetic 4,000-node count table (~16 M entries, the
release's layout and size) and a matching state_dict, converted once; prints time and
peak memory. Usage: python benchmarks/bench_import.py [--nodes 4000] [--own 0.03]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch



def write_counts(path: Path, tokens: list[str], own: np.ndarray) -> None:
    """{source: {target: count}} with every pair present, zeros where no own row."""
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{")
        for s, source in enumerate(tokens):
            inner = ",".join(f"{json.dumps(t)}:{int(own[s, i])}" for i, t in enumerate(tokens))
            handle.write(("," if s else "") + f"{json.dumps(source)}:{{{inner}}}")
        handle.write("}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--nodes", type=int, default=4000)
    parser.add_argument("--own", type=float, default=0.03, help="fraction of edges with a nonzero count")
    parser.add_argument("--dim", type=int, default=32)
    args = parser.parse_args()
    V, d = args.nodes, args.dim
    rng = np.random.default_rng(0)
    own = rng.random((V, V)) < args.own
    tokens = [chr(0x4E00 + i) for i in range(V)]  # one-character tokens: no tokenizer.json needed
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        write_counts(tmp / "counts.json", tokens, own)
        (tmp / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}))
        P = int(own.sum()) + 1
        torch.save({"weights": torch.zeros(P, d, d), "biases": torch.zeros(P, 1, d),
                    "node_bias": torch.zeros(V, 1, d), "positions": torch.ones(1, 512, 1)}, tmp / "model.bin")
        size_mb = (tmp / "counts.json").stat().st_size / 1e6
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "brillm_core", "import-release", str(tmp / "model.bin"),
                        "--vocab", str(tmp / "vocab.json"), "--counts", str(tmp / "counts.json"),
                        "-o", str(tmp / "out")], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        took = time.perf_counter() - start
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    print(f"count table: {V * V:,} entries, {size_mb:.0f} MB; {P:,} parameter rows of d={d}")
    print(f"brillm import-release (fresh process: stream counts, check shapes, write native checkpoint): {took:.1f} s")
    print(f"peak memory of the import process: {peak / 1e9:.2f} GB = {peak / (P * (d * d + d) * 4):.2f}x the parameter bytes "
          f"(the release's decoder needed 9.2 GB to build its maps)")


if __name__ == "__main__":
    main()
