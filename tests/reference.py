"""An independent, plainly written BriLLM for the tests: Python loops over steps and candidates.

It follows the model as the paper (arXiv 2503.11299) and docs/model.md define it, literally,
in float64 numpy, and shares no code with the engine: its own PE code (the release's float32 table, as the checkpoints were trained
with it), GELU via math.erf, row lookup via a dict built by walking sources and targets in
id order.
"""

from __future__ import annotations

import math

import numpy as np


def pe_table(length: int, d: int) -> np.ndarray:
    """PE[p, 2k] = sin(p * f_k), PE[p, 2k+1] = cos(p * f_k), f_k = 10000 ** (2k / d), all in float32.

    The release's checkpoints were trained with torch's float32 table, so this reference
    builds it with torch's float32 operations one column at a time (and not in float64:
    the arguments reach millions of radians), then holds it as float64 like everything else.
    f_k is the float32 nearest to 10000 ** (2k / d) (2k / d itself a float32 quotient), taken
    with numpy here: torch's vectorised float32 power is 1 ulp off it on some CPUs.
    """
    import torch

    table = np.zeros((length, d))
    positions = torch.tensor(list(range(length)), dtype=torch.int64)
    for k in range(d // 2):
        exponent = np.float32(2 * k) / np.float32(d)
        f = torch.tensor(np.float32(np.float64(10000.0) ** np.float64(exponent)), dtype=torch.float32)
        angle = positions.to(torch.float32) * f
        table[:, 2 * k] = torch.sin(angle).double().numpy()
        table[:, 2 * k + 1] = torch.cos(angle).double().numpy()
    return table


def gelu(v: np.ndarray) -> np.ndarray:
    """Exact GELU, element by element."""
    return np.array([x * 0.5 * (1.0 + math.erf(x / math.sqrt(2.0))) for x in v])


def row_map(own: np.ndarray) -> dict[tuple[int, int], int]:
    """Release walk: sources then targets in id order; own edges get rows 1, 2, ...; others 0."""
    rows, nxt = {}, 1
    V = own.shape[0]
    for s in range(V):
        for t in range(V):
            if own[s, t]:
                rows[(s, t)] = nxt
                nxt += 1
            else:
                rows[(s, t)] = 0
    return rows


class ReferenceBriLLM:
    """Parameters as float64 numpy arrays plus the dict row map."""

    def __init__(self, weights, biases, node_bias, positions, own: np.ndarray) -> None:
        self.W = np.asarray(weights, dtype=np.float64)
        self.b = np.asarray(biases, dtype=np.float64)[:, 0, :]
        self.nb = np.asarray(node_bias, dtype=np.float64)[:, 0, :]
        self.pos = np.asarray(positions, dtype=np.float64)[0, :, 0]
        self.V, self.d = self.nb.shape
        self.pe = pe_table(len(self.pos), self.d)
        self.rows = row_map(own)

    @classmethod
    def from_model(cls, model) -> "ReferenceBriLLM":
        """Copy a torch BriLLM's parameters; the own-edge mask comes from its edge keys."""
        V = model.vocab_size
        own = np.zeros((V, V), dtype=bool)
        for key in model.edge_keys.tolist():
            own[key // V, key % V] = True
        return cls(model.weights.detach().numpy(), model.biases.detach().numpy(),
                   model.node_bias.detach().numpy(), model.positions.detach().numpy(), own)

    def start(self, node: int, base=None) -> np.ndarray:
        """e_0."""
        base = np.full(self.d, 1.0 / self.d) if base is None else np.asarray(base, dtype=np.float64)
        return gelu(base + self.nb[node] + self.pe[0])

    def memory(self, kept: list[np.ndarray], window: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """x_i and a = softmax(positions[:i]); with a window of N, the softmax covers the last N and the rest weigh 0."""
        i = len(kept)
        first = 0 if window is None else max(0, i - window)
        logits = self.pos[first:i]
        a = np.zeros(i)
        a[first:] = np.exp(logits - logits.max())
        a = a / a.sum()
        x = np.zeros(self.d)
        for j, c in enumerate(kept):
            x = x + a[j] * c
        return x, a

    def output(self, s: int, t: int, x: np.ndarray, pe_index: int) -> np.ndarray:
        """o(t) on edge (s, t)."""
        r = self.rows[(s, t)]
        return gelu(x @ self.W[r] + self.b[r] + self.pe[pe_index])

    def run(self, path: list[int], release: bool = False, temperature: float = 1.0, base=None,
            memory_window: int | None = None):
        """Teacher-force a whole path; per step: energies, probabilities, x, kept output, a."""
        kept: list[np.ndarray] = []
        steps = []
        for i in range(len(path) - 1):
            s = path[i]
            if i == 0:
                x, a = self.start(s, base), np.zeros(0)
            else:
                x, a = self.memory(kept, memory_window)
            pe_index = i if release else i + 1
            energies = np.full(self.V, np.nan)
            outputs = {}
            for t in range(self.V):
                outputs[t] = self.output(s, t, x, pe_index)  # a forced self-loop still has an output
                if not (release and t == s):  # ...but the release decoder never offers it
                    energies[t] = math.sqrt(sum(v * v for v in outputs[t]))
            logits = energies if release else energies / temperature
            finite = ~np.isnan(logits)
            probs = np.full(self.V, np.nan)
            ex = np.exp(logits[finite] - logits[finite].max())
            probs[finite] = ex / ex.sum()
            kept.append(outputs[path[i + 1]])
            steps.append({"energies": energies, "probabilities": probs, "signal_in": x,
                          "output": outputs[path[i + 1]], "memory": a})
        return steps

    def greedy(self, prompt: list[int], new_tokens: int, release: bool = False) -> list[int]:
        """Greedy continuation: the highest energy, lowest id on ties."""
        path = list(prompt)
        for _ in range(new_tokens):
            steps = self.run(path + [0], release=release)  # the dummy target only affects the kept output
            e = steps[-1]["energies"]
            best = max((v, -t) for t, v in enumerate(e) if not np.isnan(v))
            path.append(-best[1])
        return path



def release_float32_energies(ref: ReferenceBriLLM, path: list[int], release: bool = False) -> list:
    """Teacher-force ``path`` with the release's own float32 torch operations, one step at a time.

    Shares no code with the engine. It transcribes the arithmetic BRILLM-MODEL.md
    attributes to the release: the start signal GELU(ones(1, d) / d + node_bias + PE[0]);
    the memory as the elementwise product of the kept outputs (1, i, d) with
    positions[:, :i, :].softmax(1), summed over dimension 1; every candidate's output from
    one batched matmul of the repeated (1 x d) signal with its (d x d) matrix; energies as
    norm(2, (-2, -1)). Parameters are the reference's float64 copies of float32 values,
    so casting back is exact. Returns one float32 tensor of V energies per step (NaN for
    the source under the release's decoder).
    """
    import torch

    act = torch.nn.GELU()
    weights = torch.from_numpy(ref.W).float()
    biases = torch.from_numpy(ref.b).float()[:, None, :]
    node_bias = torch.from_numpy(ref.nb).float()[:, None, :]
    positions = torch.from_numpy(ref.pos).float()[None, :, None]
    pe = torch.from_numpy(ref.pe).float()
    cache = torch.zeros(1, 0, ref.d)
    steps = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: on a busy machine a second thread only waits; the bits do not change
    try:
        with torch.no_grad():
            for i in range(len(path) - 1):
                s = path[i]
                if i == 0:
                    x = act(torch.ones(1, 1, ref.d) / ref.d + node_bias[s : s + 1] + pe[0])
                else:
                    x = (cache * positions[:, :i, :].softmax(1)).sum(1, keepdim=True)
                rows = torch.tensor([ref.rows[(s, t)] for t in range(ref.V)])
                outputs = act(x.repeat(ref.V, 1, 1).bmm(weights[rows]) + biases[rows] + pe[i if release else i + 1])
                energies = outputs.norm(2, (-2, -1))
                if release:
                    energies[s] = float("nan")
                cache = torch.cat([cache, outputs[path[i + 1]][None]], dim=1)
                steps.append(energies)
    finally:
        torch.set_num_threads(threads)
    return steps
