"""The ``brillm`` command's engine subcommands: thin wrappers over the public API.

Each handler returns an exit code; a BriLLMError becomes ``error: ...`` on stderr and
exit code 1, a usage error exit code 2 (argparse). ``register`` adds them to the parser
that ``brillm_core.cli`` builds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..atomic import write_atomic, write_json_atomic
from ..checkpoint import Checkpoint, load_checkpoint, resolve_checkpoint
from ..errors import BriLLMError, PromptError
from ..evaluate import MAX_TEXT_BYTES, check_text_size, require_finite_score
from ..recall import incoming_energy, recall_activation
from ..release import import_release
from ..scoring import score_ids
from ..decoding import DECODING, NUMBERS, SETTINGS
from ..trace import DecodeSettings

# A prompt must fit the position table (at most MAX_POSITIONS = 65,536 tokens); 1 MiB is
# more text than that, and tokenising it whole stays within a few hundred MB.
MAX_PROMPT_FILE_BYTES = 2**20


def read_text_file(path: str | Path, max_bytes: int, what: str = "text") -> str:
    """A UTF-8 text file of at most ``max_bytes``, with a clear error for missing, large or non-UTF-8 files."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read(max_bytes + 1)
        if len(blob) > max_bytes:
            raise BriLLMError(f"{path} is larger than {max_bytes:,} bytes, the limit for a {what}")
        return blob.decode("utf-8")
    except FileNotFoundError as exc:
        raise BriLLMError(f"file not found: {path}") from exc
    except OSError as exc:  # a directory, no permission, an I/O error
        raise BriLLMError(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise PromptError(f"{path} is not valid UTF-8 (byte {exc.start}); convert it to UTF-8 first") from exc


def parse_ids(text: str) -> list[int]:
    """'3,1,4' -> [3, 1, 4] with a clear error."""
    try:
        return [int(part) for part in text.replace(" ", "").split(",") if part != ""]
    except ValueError as exc:
        raise PromptError(f"--ids takes comma-separated node ids such as 3,1,4; got {text!r}") from exc


def parse_floats(text: str) -> tuple[float, ...]:
    """'0.1,0.2' -> (0.1, 0.2) with a clear error."""
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError as exc:
        raise PromptError(f"--start-signal takes comma-separated numbers; got {text!r}") from exc


def _add_prompt(parser: argparse.ArgumentParser) -> None:
    """--prompt / --prompt-file / --ids, one of them required."""
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--prompt", help="prompt text (tokenised with the model's tokeniser)")
    group.add_argument("--prompt-file", help="read the prompt from a UTF-8 file")
    group.add_argument("--ids", help="explicit node ids, comma-separated (e.g. 3,1,4); a single id starts from that node")


def _add_decoding(parser: argparse.ArgumentParser, names: tuple[str, ...] | None = None) -> None:
    """The decoding settings as options, each built from its declaration (``names``: only these)."""
    *others, last = [s.option for s in DECODING if s.samples]
    sampling = f"{', '.join(others)} or {last}"
    for s in DECODING:
        if names is not None and s.name not in names:
            continue
        if s.kind is bool:
            when = f" (the default unless {sampling} is given)" if s.default else ""
            parser.add_argument(s.option, action="store_true", help=s.help + when)
        elif s.kind is NUMBERS:
            parser.add_argument(s.option, metavar="V1,..,VD", help=f"{s.help} (default {s.unset})")
        else:
            default = s.unset if s.default is None else f"{s.default:g}"
            parser.add_argument(s.option, type=s.kind, metavar=s.name.split("_")[-1].upper(),
                                help=f"{s.help}; {s.range_text()} (default {default})")


def _settings(args: argparse.Namespace) -> DecodeSettings:
    """DecodeSettings from the parsed options: each option not given takes its declared default, and giving
    any sampling option (temperature, top-k, seed) samples unless --greedy is given."""
    given = {s.name: getattr(args, s.name) for s in DECODING if s.name in vars(args)}
    sampled = any(given.get(s.name) is not None for s in DECODING if s.samples)
    values = {}
    for name, value in given.items():
        setting = SETTINGS[name]
        if setting.kind is bool:
            values[name] = value or (bool(setting.default) and not sampled)
        elif setting.kind is NUMBERS and value is not None:
            values[name] = parse_floats(value)
        else:
            values[name] = setting.default if value is None else value
    return DecodeSettings(**values)


def _prompt(args: argparse.Namespace) -> str | list[int]:
    """The prompt as text or ids."""
    if args.ids is not None:
        return parse_ids(args.ids)
    if args.prompt_file is not None:
        return read_text_file(args.prompt_file, MAX_PROMPT_FILE_BYTES, "prompt")
    return args.prompt


def _warn_unknown(unknown: list[dict]) -> None:
    """Tell the user which prompt pieces fell back to the unknown node."""
    if unknown:
        pieces = ", ".join(repr(u["text"]) for u in unknown[:10])
        more = f" and {len(unknown) - 10} more" if len(unknown) > 10 else ""
        print(f"warning: {len(unknown)} prompt piece(s) are not in the vocabulary and map to the unknown node: {pieces}{more}", file=sys.stderr)


def _node(checkpoint: Checkpoint, text: str) -> int:
    """A node given as an id or as its token text."""
    if text.isdigit():
        return int(text)
    tokens = checkpoint.tokenizer.tokens()
    for candidate in (text, "Ġ" + text.lstrip()):
        if candidate in tokens:
            return tokens.index(candidate)
    raise PromptError(f"{text!r} is neither a node id nor a token of this model")


def load_model(path: str) -> Checkpoint:
    """A checkpoint directory, or a training run's newest checkpoint (as `eval` takes it)."""
    return load_checkpoint(resolve_checkpoint(path))


def cmd_import_release(args: argparse.Namespace) -> int:
    """brillm import-release."""
    def progress(n: int) -> None:
        if n % 500 == 0:
            print(f"  count table: {n} sources read", file=sys.stderr)

    ckpt = import_release(args.weights, args.vocab, args.counts, args.output, tokenizer=args.tokenizer, progress=progress)
    info = ckpt.model.describe()
    print(f"imported {info['nodes']} nodes, {info['parameter_rows']} parameter rows into {args.output}")
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """brillm generate: print the prompt and its continuation."""
    ckpt = load_model(args.model)
    trace = ckpt.trace(_prompt(args), _settings(args))
    _warn_unknown(trace.unknown)
    print(ckpt.tokenizer.decode(trace.path.tolist()))
    return 0


def cmd_trace(args: argparse.Namespace) -> int:
    """brillm trace: write the full trace as JSON (schema brillm-trace v1)."""
    ckpt = load_model(args.model)
    trace = ckpt.trace(_prompt(args), _settings(args))
    _warn_unknown(trace.unknown)
    if args.json == "-":
        print(trace.to_json())
    else:
        write_json_atomic(Path(args.json), trace.to_dict())
        print(f"wrote {trace.num_steps} steps to {args.json}", file=sys.stderr)
    return 0


def cmd_recall(args: argparse.Namespace) -> int:
    """brillm recall: activation spread from a context, or the reverse view of one node."""
    ckpt = load_model(args.model)
    prompt = _prompt(args)
    encoding = ckpt.encode_prompt(prompt) if isinstance(prompt, str) else None
    ids = encoding.ids if encoding else prompt
    if encoding:
        _warn_unknown(encoding.unknown)
    tokens = [ckpt.token(n) for n in range(ckpt.config.vocab_size)]
    if args.reverse is not None:
        frame = incoming_energy(ckpt.model, _node(ckpt, args.reverse), ids)
        frame.insert(1, "token", [tokens[s] for s in frame["source"]])
    else:
        result = recall_activation(ckpt.model, ids, hops=args.hops, branch=args.branch, beam=args.beam)
        frame = result.to_frame(tokens)
    frame = frame.head(args.top)
    if args.csv:
        write_atomic(args.csv, frame.to_csv(index=False))
    print(frame.to_string(index=False))
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    """brillm score: full-vocabulary perplexity and top-1/top-5 accuracy of a text file."""
    check_text_size(args.text)
    ckpt = load_model(args.model)
    encoding = ckpt.encode(read_text_file(args.text, MAX_TEXT_BYTES))
    _warn_unknown(encoding.unknown)
    score = score_ids(ckpt.model, encoding.ids, _settings(args))
    figures = require_finite_score(score).to_dict()
    print(json.dumps(figures, indent=2) if args.json else
          f"tokens {figures['tokens']}  perplexity {figures['perplexity']:.3f}  "
          f"top-1 {figures['top1_accuracy']:.4f}  top-5 {figures['top5_accuracy']:.4f}  mean rank {figures['mean_rank']:.1f}"
          " (ties broken at random, in expectation)")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    """brillm info: sizes, own vs shared rows, tokeniser, metadata keys."""
    ckpt = load_model(args.model)
    info = {**ckpt.model.describe(), "tokenizer": ckpt.tokenizer.kind, "unk_id": ckpt.tokenizer.unk_id,
            "model_id": ckpt.model_id, "metadata": sorted(ckpt.metadata)}
    if args.json:
        print(json.dumps(info, indent=2))
    else:
        for key, value in info.items():
            print(f"{key:>20}: {value}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the engine's subcommands (import-release, generate, trace, recall, score, info)."""
    p = sub.add_parser("import-release", help="convert the release's state_dict, vocabulary and counts")
    p.add_argument("weights", help="the release's state_dict file (loaded with weights_only=True)")
    p.add_argument("--vocab", required=True, help="vocabulary JSON {token: id}")
    p.add_argument("--counts", required=True, help="count table JSON {source: {target: count}} (streamed)")
    p.add_argument("--tokenizer", help="tokenizer.json for a BPE vocabulary (omit for a character vocabulary)")
    p.add_argument("-o", "--output", required=True, help="new checkpoint directory (must not exist)")
    p.set_defaults(handler=cmd_import_release)

    for name, handler, text in (("generate", cmd_generate, "continue a prompt and print the text"),
                                ("trace", cmd_trace, "run a prompt and write every step as JSON")):
        p = sub.add_parser(name, help=text)
        p.add_argument("model", help="checkpoint directory or training run directory (its newest checkpoint)")
        _add_prompt(p)
        _add_decoding(p)
        if name == "trace":
            p.add_argument("--json", required=True, help="output file for the trace JSON ('-' for stdout)")
        p.set_defaults(handler=handler)

    p = sub.add_parser("recall", help="recall activation from a context, or --reverse NODE")
    p.add_argument("model", help="checkpoint directory or training run directory (its newest checkpoint)")
    _add_prompt(p)
    p.add_argument("--hops", type=int, default=3, help="hops to spread (default 3)")
    p.add_argument("--branch", type=int, default=5, help="successors expanded per path (default 5)")
    p.add_argument("--beam", type=int, default=64, help="paths kept per hop (default 64)")
    p.add_argument("--reverse", metavar="NODE", help="instead: sources sending most energy into NODE (id or token)")
    p.add_argument("--top", type=int, default=20, help="rows to show (default 20)")
    p.add_argument("--csv", help="also write the table as CSV")
    p.set_defaults(handler=cmd_recall)

    p = sub.add_parser("score", help="full-vocabulary perplexity and top-1/top-5 accuracy of a text file")
    p.add_argument("model", help="checkpoint directory or training run directory (its newest checkpoint)")
    p.add_argument("text", help="UTF-8 text file")
    _add_decoding(p, ("release_decoder", "memory_window"))
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_score)

    p = sub.add_parser("info", help="sizes, own vs shared rows, tokeniser")
    p.add_argument("model", help="checkpoint directory or training run directory (its newest checkpoint)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(handler=cmd_info)
