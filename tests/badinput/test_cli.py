"""The corpus against the command line: one `error:` line, exit 1 (2 for usage), no traceback, no stray files.

Each case runs the command line in a new process (``tests.cli_runner``) in a fresh empty working
directory with HOME and TMPDIR pointing at empty directories; afterwards those and the corpus are
unchanged. The processes run two at a time.
"""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from ..cli_runner import brillm
from . import corpus

# A sample of the corpus (the API tests run all of it; every case takes the same path to stderr).
CHECKPOINT_CASES = ["config-is-a-directory", "pickle-payload", "oversized-sparse-file", "vocab-count-disagree",
                    "config-deep-nesting", "config-5000-digit-size", "config-float-size", "weights-float8",
                    "config-huge-positions", "biases-overflow-float32", "tokenizer-gapped-ids"]
RELEASE_CASES = ["weights-pickle-payload", "counts-name-unknown-target", "vocab-deep-nesting", "counts-deep-nesting"]
# (arguments with {good}, {tmp}, {dir} placeholders, expected exit code, fragment of stderr)
ARGUMENT_CASES: list[tuple[list[str | bytes], int, str]] = [
    (["generate", "{good}", "--prompt-file", "{dir}"], 1, "cannot read"),
    (["generate", "{good}", "--prompt-file", "{tmp}/huge.txt"], 1, "position table"),
    (["generate", "{good}", "--prompt", b"a\xff\xfeb"], 1, "UTF-8"),
    (["generate", "{good}", "--ids", "1,99999999999999999999999"], 1, "not a node id"),
    (["generate", "{good}", "--ids", "-1"], 1, "not a node id"),
    (["generate", "{good}", "--prompt", "ab", "--start-signal", "1,nan,2"], 1, "finite"),
    (["generate", "{good}", "--prompt", "ab", "--start-signal", "1,2"], 1, "start signal must have 6"),
    (["generate", "{good}", "--prompt", "ab", "--max-new-tokens", "-5"], 1, "max_new_tokens"),
    (["generate", "{good}", "--prompt", "ab", "--max-new-tokens", "99999999999"], 1, "position table"),
    (["generate", "{good}", "--prompt", "ab", "--top-k", "0"], 1, "top_k"),
    (["recall", "{good}", "--prompt", "ab", "--hops", "0"], 1, "hops must be in 1..32"),
    (["recall", "{good}", "--prompt", "ab", "--beam", "1000000"], 1, "beam must be in 1..1024"),
    (["recall", "{good}", "--prompt", "ab", "--reverse", "99999"], 1, "not a node id"),
    (["recall", "{good}", "--prompt", "ab", "--csv", "{tmp}/no/such/dir/r.csv"], 1, "non-existent directory"),
    (["trace", "{good}", "--prompt", "ab", "--json", "{tmp}/no/such/dir/t.json"], 1, "No such file"),
    (["score", "{good}", "{tmp}/one-token.txt"], 1, "at least two tokens"),
    (["info", "{tmp}/one-token.txt"], 1, "not found"),
    (["generate", "{good}", "--prompt", "ab", "--max-new-tokens", "many"], 2, "invalid int value"),
    (["generate", "{good}", "--prompt", "~~~~\x01\x02", "--max-new-tokens", "2"], 0, "warning: 6 prompt piece(s)"),
    (["generate", "{good}", "--prompt-file", "{tmp}/two-mib.txt"], 1, "limit for a prompt"),
    (["generate", "{good}", "--prompt", "ab", "--temperature", "1e-300"], 1, "temperature must be at least"),
    (["generate", "{good}", "--prompt", "ab", "--seed", "18446744073709551616"], 1, "seed must be in 0..18446744073709551615"),
    (["generate", "{good}", "--prompt", "ab", "--start-signal", "1e39,0,0,0,0,0"], 1, "float32 range"),
    (["generate", "{over}", "--prompt", "ab"], 1, "overflowed float32"),
    (["generate", "{over}", "--prompt", "ab", "--start-signal", "3e38,3e38,3e38,3e38,3e38,3e38"], 1, "overflowed"),
    (["score", "{over}", "{tmp}/short.txt"], 1, "perplexity would not be a number"),
    (["recall", "{over}", "--prompt", "ab"], 1, "overflowed float32"),
    (["recall", "{over}", "--prompt", "ab", "--reverse", "3"], 1, "overflowed float32"),
    (["recall", "{over}", "--prompt", "a", "--reverse", "3"], 1, "overflowed float32"),
    (["score", "{good}", "{tmp}/three-mib.txt"], 1, "scoring reads at most"),
    (["eval", "{good}", "{tmp}/three-mib.txt"], 1, "scoring reads at most"),
    (["eval", "{good}", "{tmp}/short.txt", "--discount", "nan"], 1, "discount D must be in [0, 1)"),
    (["eval", "{good}", "{tmp}/short.txt", "--discount", "2"], 1, "discount D must be in [0, 1)"),
    (["eval", "{good}", "{tmp}/short.txt", "--discount", "-1"], 1, "discount D must be in [0, 1)"),
    (["train", "{tmp}/short.txt", "-o", "{tmp}/run-s", "--seed", "-1"], 1, "--seed must be in"),
    (["train", "{tmp}/short.txt", "-o", "{tmp}/run-t", "--threads", "-4"], 1, "--threads must be >= 1"),
    (["train", "{tmp}/short.txt", "-o", "{tmp}/short.txt/run", "--tokenizer", "char"], 1, "cannot write checkpoints"),
    (["train", "{tmp}/one-long-line.txt", "-o", "{tmp}/run-l", "--tokenizer", "bpe", "--vocab-size", "300"], 1,
     "the BPE trainer reads lines of at most 1,048,576"),
    (["info", "{run}"], 0, ""),  # a run folder: its newest checkpoint (tests/test_cli.py checks which)
]


def listing(root: Path) -> set[str]:
    """Every path under ``root``."""
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def run(args: list[str | bytes], sandbox: Path) -> subprocess.CompletedProcess:
    """``brillm ARGS`` in an empty working directory with HOME and TMPDIR inside the sandbox."""
    env = {**os.environ, "HOME": str(sandbox / "home"), "TMPDIR": str(sandbox / "tmp"), "PYTHONDONTWRITEBYTECODE": "1"}
    return brillm(*args, cwd=sandbox / "cwd", env=env)


@pytest.fixture(scope="module")
def results(files, tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[subprocess.CompletedProcess, Path]]:
    """Every CLI case run once (two processes at a time), with its sandbox."""
    tmp = tmp_path_factory.mktemp("cli")
    good = corpus.good_checkpoint(tmp / "good")
    over = corpus.overflowing_checkpoint(tmp / "over")
    run_dir = tmp / "run"
    corpus.good_checkpoint(run_dir / "checkpoints" / "step-00000003")
    (tmp / "short.txt").write_text("ab ba ab ba\n")
    (tmp / "two-mib.txt").write_text("ab" * 2**20)
    (tmp / "three-mib.txt").write_text("ab" * 3 * 2**19)
    (tmp / "huge.txt").write_text("ab" * 100_000)
    (tmp / "one-token.txt").write_text("a")
    (tmp / "one-long-line.txt").write_text("short line\n" + "the cat sees a dog " * 60_000 + "\n")
    (tmp / "a-directory").mkdir()
    fields = {"good": str(good), "tmp": str(tmp), "dir": str(tmp / "a-directory"), "over": str(over),
              "run": str(run_dir)}
    jobs: dict[str, list[str | bytes]] = {}
    for name in CHECKPOINT_CASES:
        jobs[f"checkpoint:{name}"] = ["info", str(files[0][name].path)]
    for name in RELEASE_CASES:
        case = files[1][name]
        jobs[f"release:{name}"] = ["import-release", str(case.weights), "--vocab", str(case.vocab), "--counts",
                                  str(case.counts), "-o", "{tmp}/imported-" + name,
                                  *(["--tokenizer", str(case.tokenizer)] if case.tokenizer else [])]
    for i, (args, _, _) in enumerate(ARGUMENT_CASES):
        jobs[f"args:{i}"] = args
    sandboxes = {}
    for key in jobs:
        sandbox = tmp / "sandbox" / key.replace(":", "-")
        for sub in ("home", "tmp", "cwd"):
            (sandbox / sub).mkdir(parents=True)
        sandboxes[key] = sandbox
        jobs[key] = [a.format(**fields) if isinstance(a, str) else a for a in jobs[key]]
    before = listing(files[0]["empty-weights"].path.parents[1])
    with ThreadPoolExecutor(2) as pool:
        done = dict(zip(jobs, pool.map(lambda k: run(jobs[k], sandboxes[k]), jobs)))
    assert listing(files[0]["empty-weights"].path.parents[1]) == before, "the CLI wrote into the corpus"
    return {k: (done[k], sandboxes[k]) for k in jobs}


def check(result: subprocess.CompletedProcess, sandbox: Path, code: int, fragment: str) -> None:
    """Exit code, one clear message, no traceback, nothing left in the sandbox."""
    err = result.stderr.decode(errors="replace")
    assert result.returncode == code, err
    assert "Traceback" not in err
    if code:
        lines = [line for line in err.splitlines() if "error:" in line]
        assert len(lines) == 1 and fragment in lines[0], err
    else:
        assert fragment in err
    assert listing(sandbox) == {"home", "tmp", "cwd"}, "the CLI wrote outside its output path"


@pytest.mark.parametrize("name", CHECKPOINT_CASES)
def test_broken_checkpoint(results, files, name: str) -> None:
    result, sandbox = results[f"checkpoint:{name}"]
    check(result, sandbox, 1, files[0][name].message)


@pytest.mark.parametrize("name", RELEASE_CASES)
def test_disagreeing_release_files(results, files, name: str) -> None:
    result, sandbox = results[f"release:{name}"]
    check(result, sandbox, 1, files[1][name].message)
    assert not list(sandbox.parent.parent.glob("imported-*")) and not (sandbox.parents[2] / corpus.MARKER).exists()


@pytest.mark.parametrize("index", range(len(ARGUMENT_CASES)),
                         ids=[" ".join(str(a) for a in c[0][2:])[:40] for c in ARGUMENT_CASES])
def test_bad_arguments(results, index: int) -> None:
    _, code, fragment = ARGUMENT_CASES[index]
    result, sandbox = results[f"args:{index}"]
    check(result, sandbox, code, fragment)
