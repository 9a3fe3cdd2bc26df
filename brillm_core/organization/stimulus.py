"""Stimuli for the organisation analysis: words with times -> a checkpoint's tokens with times -> TR-pooled responses.

Timing rules (documented in the report's settings):
- plain text: words are the whitespace-separated pieces; word i starts at start + i / word_rate seconds and lasts
  1 / word_rate seconds;
- a transcript gives each word's onset (and optionally its offset); a word without an offset lasts until the
  next word's onset, the last one for the median onset interval (1 s for a one-word transcript);
- a word's m tokens split its interval evenly: token j of a word with interval [on, off) is at
  on + j (off - on) / m, so a word's first token is at its onset and the tokens keep their order;
- the text the model sees is the words joined by single spaces (when the tokeniser knows a space; a character
  model without one sees the words back to back); a separator token belongs to the word after it.
A trace of tokens u_0..u_n has n steps, step j targeting token j+1 at token j+1's time; u_0 only starts the
path. Stimuli longer than the position table (L positions) are propagated in consecutive windows of L tokens
overlapping by one (window w starts at token w (L - 1)), so every token after the first is the target of exactly
one step; the model's memory restarts at each window.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch
from scipy import sparse

from ..errors import BriLLMError
from ..model import BriLLM
from ..propagate import propagate
from ..tokenizer import NodeTokenizer
from ..trace import DecodeSettings
from .responses import POOLING, context_free, node_gated_responses, pooling_matrix

__all__ = [
    "KINDS",
    "OrganizationError",
    "Stimulus",
    "TokenTimeline",
    "StimulusResponses",
    "read_utf8",
    "stimulus_from_text",
    "parse_transcript",
    "read_stimulus",
    "tokenize_stimulus",
    "check_fits",
    "words_per_tr",
    "stimulus_responses",
]

KINDS = ("node_gated", "landscape")
ProgressFn = Callable[[float, str], None]


class OrganizationError(BriLLMError, ValueError):
    """Bad input to the organisation analysis: the message says what is wrong and what to do."""


@dataclass(frozen=True)
class Stimulus:
    """Words with onset and offset times in seconds from the start of the first volume."""

    words: tuple[str, ...]
    onsets: np.ndarray
    offsets: np.ndarray

    @property
    def duration(self) -> float:
        """End of the last word, in seconds."""
        return float(self.offsets.max())


@dataclass(frozen=True)
class TokenTimeline:
    """The stimulus as the checkpoint's node ids, each with a time and the index of its word."""

    ids: np.ndarray
    times: np.ndarray
    word_index: np.ndarray
    unknown: list[dict]

    @property
    def n_unknown_tokens(self) -> int:
        """Tokens of the stimulus on the model's unknown node (dropped text is reported but has no token)."""
        return sum(u.get("position") is not None for u in self.unknown)

    @property
    def unknown_share(self) -> float:
        """Share of the stimulus tokens on the unknown node."""
        return self.n_unknown_tokens / max(len(self.ids), 1)


@dataclass(frozen=True)
class StimulusResponses:
    """TR-pooled responses (volumes x ANs) with each AN's node and unit (-1 for landscape ANs), and the same ANs'
    context-free responses (the lexical control, see `responses.context_free`)."""

    matrix: np.ndarray
    lexical: np.ndarray
    nodes: np.ndarray
    units: np.ndarray
    kind: str
    how: str
    n_steps: int
    n_windows: int

    def labels(self, token: Callable[[int], str]) -> list[str]:
        """'token#node:unit' (landscape: 'token#node') for each AN."""
        return [f"{token(int(n))}#{n}" + (f":{u}" if u >= 0 else "") for n, u in zip(self.nodes, self.units)]


def read_utf8(path: str | Path) -> str:
    """A UTF-8 file's text (a BOM is dropped), with clear errors for missing or non-UTF-8 files."""
    try:
        return Path(path).read_bytes().decode("utf-8-sig")
    except FileNotFoundError as exc:
        raise OrganizationError(f"file not found: {path}") from exc
    except UnicodeDecodeError as exc:
        raise OrganizationError(f"{path} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 first") from exc


def stimulus_from_text(text: str, word_rate: float, start: float = 0.0) -> Stimulus:
    """Whitespace-separated words at a constant rate (words per second) from `start` seconds."""
    if not (np.isfinite(word_rate) and word_rate > 0):
        raise OrganizationError(f"the word rate must be a positive number of words per second, got {word_rate}")
    if not (np.isfinite(start) and start >= 0):
        raise OrganizationError(f"the start time must be >= 0 seconds, got {start}")
    words = tuple(text.split())
    if not words:
        raise OrganizationError("the stimulus is empty: it holds no words")
    onsets = start + np.arange(len(words)) / word_rate
    return Stimulus(words, onsets, onsets + 1.0 / word_rate)


def _number(text: str, what: str, row: int) -> float:
    """A finite float from a transcript cell, or an error naming the row."""
    try:
        value = float(text)
    except ValueError:
        raise OrganizationError(f"transcript row {row}: {what} {text!r} is not a number of seconds") from None
    if not np.isfinite(value) or value < 0:
        raise OrganizationError(f"transcript row {row}: {what} {text!r} must be a finite number >= 0")
    return value


def parse_transcript(text: str, delimiter: str | None = None) -> Stimulus:
    """Rows of word, onset[, offset] (CSV or TSV; an optional header names the columns word/onset/offset).

    Onsets must not decrease. A missing offset ends the word at the next onset (see the module docstring).
    """
    if delimiter is None:
        delimiter = "\t" if "\t" in text.split("\n", 1)[0] else ","
    rows = [r for r in csv.reader(io.StringIO(text), delimiter=delimiter) if any(c.strip() for c in r)]
    if not rows:
        raise OrganizationError("the transcript is empty: it holds no rows")
    columns = {"word": 0, "onset": 1, "offset": 2}
    header = [c.strip().lower() for c in rows[0]]
    first_row = 1
    if len(header) >= 2:
        try:
            float(header[1])
        except ValueError:
            missing = [c for c in ("word", "onset") if c not in header]
            if missing:
                raise OrganizationError(f"the transcript header {rows[0]} lacks column(s) {missing}") from None
            columns = {c: header.index(c) for c in ("word", "onset", "offset") if c in header}
            first_row = 2
            rows = rows[1:]
    words, onsets, offsets = [], [], []
    for i, row in enumerate(rows, start=first_row):
        if len(row) <= max(columns["word"], columns["onset"]):
            raise OrganizationError(f"transcript row {i} has {len(row)} column(s); it needs a word and an onset")
        word = row[columns["word"]].strip()
        if not word:
            raise OrganizationError(f"transcript row {i} has an empty word")
        words.append(word)
        onsets.append(_number(row[columns["onset"]], "onset", i))
        off = columns.get("offset")
        offsets.append(_number(row[off], "offset", i) if off is not None and off < len(row) and row[off].strip() else np.nan)
    if not words:
        raise OrganizationError("the transcript is empty: it holds a header but no words")
    on, off = np.array(onsets), np.array(offsets)
    if (np.diff(on) < 0).any():
        i = int(np.flatnonzero(np.diff(on) < 0)[0])
        raise OrganizationError(f"transcript onsets must not decrease: row {i + first_row + 1} starts before the row above")
    gaps = np.diff(on)
    last = float(np.median(gaps)) if gaps.size else 1.0
    fallback = np.r_[on[1:], on[-1] + (last if last > 0 else 1.0)]
    off = np.where(np.isnan(off), fallback, off)
    if (off < on).any():
        i = int(np.flatnonzero(off < on)[0])
        raise OrganizationError(f"transcript row {i + first_row}: the offset is before the onset")
    return Stimulus(tuple(words), on, off)


def read_stimulus(text_path: str | Path | None = None, transcript_path: str | Path | None = None,
                  word_rate: float = 2.5) -> Stimulus:
    """A stimulus from a plain text file (with a word rate) or from a transcript file (.tsv is tab-separated)."""
    if (text_path is None) == (transcript_path is None):
        raise OrganizationError("give either a plain-text stimulus or a transcript, not both or neither")
    if text_path is not None:
        return stimulus_from_text(read_utf8(text_path), word_rate)
    path = Path(transcript_path)
    return parse_transcript(read_utf8(path), "\t" if path.suffix.lower() == ".tsv" else None)


def tokenize_stimulus(tokenizer: NodeTokenizer, stimulus: Stimulus) -> TokenTimeline:
    """Tokenise word by word (see the module docstring) and give each token a time inside its word's interval."""
    space = tokenizer.encode(" ")
    sep = " " if space.ids and not space.unknown else ""
    ids: list[int] = []
    times: list[float] = []
    word_index: list[int] = []
    unknown: list[dict] = []
    for w, (word, on, off) in enumerate(zip(stimulus.words, stimulus.onsets, stimulus.offsets)):
        enc = tokenizer.encode((sep if w else "") + word)
        m = len(enc.ids)
        unknown += [{**u, "word": w, "position": None if u.get("position") is None else u["position"] + len(ids)}
                    for u in enc.unknown]
        ids += enc.ids
        times += (on + np.arange(m) * (off - on) / max(m, 1)).tolist()
        word_index += [w] * m
    if len(ids) < 2:
        raise OrganizationError(f"the stimulus gives {len(ids)} token(s); a path needs at least two")
    return TokenTimeline(np.array(ids, dtype=np.int64), np.array(times), np.array(word_index), unknown)


def check_fits(stimulus: Stimulus, tr: float, n_tr: int, timeline: TokenTimeline | None = None) -> None:
    """Raise unless every word (and every token, given the timeline) starts inside n_tr volumes of tr seconds."""
    if not (np.isfinite(tr) and tr > 0) or n_tr < 1:
        raise OrganizationError(f"need a TR > 0 seconds and at least one volume, got TR {tr} and {n_tr} volumes")
    scan = tr * n_tr
    times = stimulus.onsets if timeline is None else timeline.times
    last = float(times.max())
    if last >= scan:
        what = "word" if timeline is None else "token"
        late = int((times >= scan).sum())
        raise OrganizationError(
            f"the stimulus is longer than the recording: its last {what} starts at {last:.2f} s but {n_tr} volumes "
            f"x TR {tr} s = {scan:.2f} s ({late} {what}(s) fall after it); give more volumes, a longer TR, a faster "
            f"word rate or a shorter stimulus (at least {int(np.floor(last / tr)) + 1} volumes are needed)"
        )


def words_per_tr(words: Sequence[str], onsets: np.ndarray, tr: float, n_tr: int) -> list[str]:
    """The words starting in each volume, joined by spaces (for showing atoms under the stimulus)."""
    out: list[list[str]] = [[] for _ in range(n_tr)]
    for word, on in zip(words, onsets):
        v = int(np.floor(on / tr))
        if 0 <= v < n_tr:
            out[v].append(word)
    return [" ".join(w) for w in out]


def stimulus_responses(
    model: BriLLM,
    timeline: TokenTimeline,
    tr: float,
    n_tr: int,
    kind: str = "node_gated",
    how: str = "sum",
    progress: ProgressFn | None = None,
) -> StimulusResponses:
    """Propagate the stimulus (teacher-forced, in windows) and pool node-gated or landscape responses into TRs.

    Node-gated ANs are (node, unit) for the nodes that occur as targets; landscape ANs are the V nodes' energies.
    Pooling uses one (volumes x steps) matrix for the whole stimulus, so windows add up exactly for every pooling.
    The lexical responses replace each step's response by its token's mean over the stimulus: node-gated, the mean
    output of the target node; landscape, the mean energies of the steps leaving the same source node.
    """
    if kind not in KINDS:
        raise OrganizationError(f"responses must be one of {KINDS}, got {kind!r}")
    step_times = timeline.times[1:]
    if how not in POOLING:
        raise OrganizationError(f"pooling must be one of {POOLING}, got {how!r}")
    if step_times.size and step_times.max() >= tr * n_tr:
        raise OrganizationError(f"tokens fall after the last volume ({n_tr} x {tr} s); check the stimulus with check_fits")
    pool = pooling_matrix(step_times, tr, n_tr, how, strict=True)
    length = model.config.max_positions
    if length < 2:
        raise OrganizationError(f"the model's position table ({length}) is too short to propagate a path")
    n_steps = step_times.size
    starts = list(range(0, n_steps, length - 1))
    targets, outputs = [], []
    landscape = np.zeros((n_tr, model.vocab_size)) if kind == "landscape" else None
    sources, inverse = np.unique(timeline.ids[:n_steps], return_inverse=True)
    source_sums = np.zeros((sources.size, model.vocab_size)) if kind == "landscape" else None
    for w, s in enumerate(starts):
        if progress:
            progress(w / len(starts), f"propagating window {w + 1} of {len(starts)} ({n_steps} steps)")
        trace = propagate(model, timeline.ids[s : s + length].tolist(), DecodeSettings())
        e = trace.num_steps
        if landscape is not None:
            energies = torch.nan_to_num(trace.energies, nan=0.0, posinf=0.0, neginf=0.0).double().numpy()
            landscape += pool[:, s : s + e] @ energies
            np.add.at(source_sums, inverse[s : s + e], energies)
        else:
            targets.append(trace.targets.numpy())
            outputs.append(trace.outputs.double().numpy())
    if landscape is not None:
        nodes, units, matrix = np.arange(model.vocab_size), np.full(model.vocab_size, -1), landscape
        per_source = sparse.csr_matrix((np.ones(n_steps), (np.arange(n_steps), inverse)), shape=(n_steps, sources.size))
        lexical = (pool @ per_source) @ (source_sums / np.bincount(inverse, minlength=sources.size)[:, None])
    else:
        steps_targets, steps_outputs = np.concatenate(targets), np.concatenate(outputs)
        gated = node_gated_responses(steps_targets, steps_outputs)
        nodes, units = gated.nodes, gated.units
        matrix = np.asarray(sparse.csr_matrix(pool @ gated.matrix).toarray())
        plain = node_gated_responses(steps_targets, context_free(steps_outputs, steps_targets))
        lexical = np.asarray(sparse.csr_matrix(pool @ plain.matrix).toarray())
    if progress:
        progress(1.0, f"{matrix.shape[1]} {kind.replace('_', '-')} ANs pooled into {n_tr} volumes ({how})")
    return StimulusResponses(matrix, np.asarray(lexical), nodes, units, kind, how, n_steps, len(starts))
