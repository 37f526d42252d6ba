"""The ``audiolens`` command line.

Each subcommand is a pair of functions: ``add_<name>(subparsers)`` declares its arguments and
sets ``func`` to ``run_<name>(args) -> int``. Adding a command means adding a pair and listing
it in :data:`COMMANDS`.

A user error (a bad argument, a model found neither locally nor on the hub, an output folder
that is a file, unreadable data, any :class:`~audiolens.errors.AudiolensError`) is one line on
standard error, ``audiolens <command>: error: ...``, and exit code 2; ``--debug`` shows the
traceback instead. What can be checked without torch (arguments, folders, where the model is)
is checked before torch is imported, so a mistake costs a second, not a minute.

Example:
    >>> main(["synth", "--out", "/tmp/synth", "--per-label", "2"])  # doctest: +SKIP
    0
    >>> main(["reproduce", "--per-label", "0"])  # doctest: +SKIP
    audiolens reproduce: error: argument --per-label: 0 is not a positive integer (see audiolens reproduce --help)
    2
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .errors import AudiolensError, AudiolensWarning, CommandError

SYNTH_EXAMPLES = """examples:
  audiolens synth --out data/synth                      50 clips per label, both tracks
  audiolens synth --out data/test --split test --per-label 20 --tracks language
"""

REPRODUCE_EXAMPLES = """examples:
  audiolens reproduce                                   the demo model on synthesized clips -> results/
  audiolens reproduce --out runs/demo --per-label 8     a quicker run into another folder
  audiolens reproduce --model Qwen/Qwen2-Audio-7B-Instruct --data /data/SAKURA --out qwen2/
  audiolens reproduce --model ./my-checkpoint --data /data/SAKURA --attributes gender emotion
  torchrun --nproc-per-node 4 -m audiolens reproduce --model M --data D --out O   (data parallel)

It prints per attribute and prompt format the information score per layer, the critical layer,
the accuracy and the accuracy with the audio masked, the enrichment sweep's outcome, and writes
records/, tables/, figures/ and report.html under --out. Rerun with the same --out to resume.
"""

MAIN_EXAMPLES = """examples:
  audiolens reproduce            the paper's study on the shipped demo model (see: audiolens reproduce -h)
  audiolens synth --out data/    espeak-ng clips in SAKURA's layout
"""

USAGE = 2  # exit code of every user error (as argparse's own)
MAX_SEED = 2**32 - 1  # every generator a study seeds (numpy's included) takes 0..2^32 - 1


class Parser(argparse.ArgumentParser):
    """argparse with its error on one line (no usage block), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(USAGE, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# --------------------------------------------------------------------------- argument types


def positive_int(text: str) -> int:
    value = _int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def seed(text: str) -> int:
    value = _int(text)
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(f"{text} is not a seed: an integer 0..{MAX_SEED}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not a number of seconds (0 or more)")
    return value


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


# --------------------------------------------------------------------------- checks before torch


def check_out(out: Path, flag: str = "--out") -> None:
    """``out`` is a folder, or can be made one: neither it nor a parent is a file, and the
    nearest existing parent is writable."""
    if out.exists() and not out.is_dir():
        raise CommandError(f"{flag} {out} is a file; give a folder (it is made if missing)")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise CommandError(f"{flag} {out}: {parent} is a file, so no folder can be made there")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CommandError(f"{flag} {out}: {parent} is not writable; choose another folder")


def check_data(data: Path) -> None:
    """``data`` is a readable folder (what is inside is checked when it is loaded)."""
    if not data.exists():
        raise CommandError(f"--data {data}: no such folder; give a SAKURA checkout")
    if not data.is_dir():
        raise CommandError(f"--data {data} is a file; give the folder of a SAKURA checkout")
    if not os.access(data, os.R_OK | os.X_OK):
        raise CommandError(f"--data {data}: the folder cannot be read (permission denied)")


def check_model(name: str) -> None:
    """``name`` is a checkpoint folder here, a hub id in the local Hugging Face cache, or (when
    the hub can be asked) a model on the hub; else :class:`CommandError`, without the download
    retries transformers would print first."""
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CommandError(f"--model {name} is a file; give a checkpoint folder or a hub id")
        if not (path / "config.json").is_file():
            raise CommandError(
                f"--model {name}: the folder has no config.json; give the folder a model was "
                "saved to (save_pretrained) or a hub id"
            )
        return
    from huggingface_hub import HfApi, constants, try_to_load_from_cache
    from huggingface_hub.errors import HFValidationError, RepositoryNotFoundError

    try:
        cached = try_to_load_from_cache(name, "config.json")
    except HFValidationError:
        raise CommandError(
            f"--model {name}: no such folder here, and not a hub id (owner/name)"
        ) from None
    if isinstance(cached, str):
        return
    offline = constants.HF_HUB_OFFLINE or os.environ.get("TRANSFORMERS_OFFLINE", "") in ("1", "true", "yes")
    where = f"no folder {name!r} here, not in the Hugging Face cache ({constants.HF_HUB_CACHE})"
    if offline:
        raise CommandError(
            f"model {name!r} could not be found locally or on the hub: {where}, and the hub "
            "is off (HF_HUB_OFFLINE); download it where there is a network (hf download "
            f"{name}) or give a checkpoint folder"
        )
    try:
        HfApi().model_info(name, timeout=20)  # one request, no retries
    except RepositoryNotFoundError:
        raise CommandError(
            f"model {name!r} could not be found locally or on the hub: {where}, and the hub has "
            "no such model (or it is private: log in with `hf auth login`)"
        ) from None
    except Exception as exc:  # noqa: BLE001 - any network failure means the same to the user
        raise CommandError(
            f"model {name!r} could not be found locally or on the hub: {where}, and the hub "
            f"cannot be reached ({type(exc).__name__}: {exc}); check the network, or download "
            f"it first (hf download {name}) and set HF_HUB_OFFLINE=1"
        ) from None


# --------------------------------------------------------------------------- commands


def add_synth(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesize a SAKURA-layout data set with espeak-ng",
        description="Write DIR/data/{Gender,Language}/audio/*.wav and metadata.csv "
        "(16 kHz mono 16-bit), deterministic for a seed.",
        epilog=SYNTH_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--out", required=True, type=Path, metavar="DIR", help="output folder")
    p.add_argument(
        "--tracks",
        nargs="+",
        default=["gender", "language"],
        choices=["gender", "language"],
        help="tracks to write (default: both)",
    )
    p.add_argument(
        "--per-label", type=positive_int, default=50, metavar="N", help="clips per label (default 50)"
    )
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument(
        "--split",
        choices=["train", "validation", "test"],
        default=None,
        help="split of sentences and voices (disjoint): train, validation (for choices), "
        "test (for reporting); default: train and validation together",
    )
    p.add_argument(
        "--workers", type=positive_int, default=2, help="parallel espeak-ng processes (default 2)"
    )
    _debug(p)
    p.set_defaults(func=run_synth, parser=p)


def run_synth(args: argparse.Namespace) -> int:
    check_out(args.out)
    from audiolens.data import load_sakura
    from audiolens.data.synth import synthesize

    root = synthesize(
        args.out,
        args.tracks,
        n_per_label=args.per_label,
        seed=args.seed,
        split=args.split,
        workers=args.workers,
    )
    for track in args.tracks:
        ds = load_sakura(root, track)
        counts = ", ".join(f"{k}: {v}" for k, v in ds.counts().items())
        print(f"{track}: {len(ds)} clips in {root / 'data' / track.capitalize()} ({counts})")
    return 0


def add_reproduce(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reproduce",
        help="run the paper's study: records, Tables II-III and Figs. 2-5",
        description="Without --model/--data: the demo (or tiny random) model on espeak-ng clips. "
        "Resumable: rerun with the same --out to compute only what is missing. Data parallel "
        "under torchrun / accelerate launch: `torchrun --nproc-per-node 4 -m audiolens "
        "reproduce ...` shares the clips out across the ranks.",
        epilog=REPRODUCE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default=None, metavar="M", help="checkpoint id or folder")
    p.add_argument("--data", default=None, type=Path, metavar="D", help="SAKURA checkout")
    p.add_argument("--out", default=Path("results"), type=Path, metavar="O", help="output folder (default results/)")
    p.add_argument("--attributes", nargs="+", default=None, help="attributes (default: all found)")
    p.add_argument("--batch-size", type=positive_int, default=8, metavar="N", help="rows per forward pass (default 8)")
    p.add_argument("--per-label", type=positive_int, default=None, metavar="N",
                   help="synthesized clips per label when no --data is given (default 16)")
    p.add_argument("--seed", type=seed, default=0, help="random seed (default 0)")
    p.add_argument("--wait", type=seconds, default=0.0, metavar="SECONDS",
                   help="when another run is writing this model's records into --out, wait up "
                   "to SECONDS for it to finish (default: stop at once with 'folder busy')")
    p.add_argument("--whole-model", action="store_true",
                   help="also fit layer-wise probes (every encoder and decoder layer) and run the encoder "
                   "lens per attribute: tables/probes.{csv,md}, tables/encoder_lens.{csv,md} and "
                   "figures/probes_{attribute}.png")
    p.add_argument("--listening", action="store_true",
                   help="also record audio heads and grounding under counterfactual audio per clip")
    _debug(p)
    p.set_defaults(func=run_reproduce, parser=p)


def run_reproduce(args: argparse.Namespace) -> int:
    check_out(args.out)
    if args.data is not None:
        check_data(args.data)
    if args.model is not None:
        check_model(args.model)  # before the data: synthesizing clips takes a while
    from audiolens.study.reproduce import DEFAULT_PER_LABEL, reproduce

    n_per_label = DEFAULT_PER_LABEL if args.per_label is None else args.per_label
    reproduce(
        args.model, args.data, args.out, attributes=args.attributes, batch_size=args.batch_size,
        n_per_label=n_per_label, seed=args.seed, wait=args.wait, whole_model=args.whole_model,
        listening=args.listening,
    )
    return 0


def _debug(p: argparse.ArgumentParser, top: bool = False) -> None:
    # A subcommand's flag must not reset the top-level one (``audiolens --debug synth``).
    p.add_argument("--debug", action="store_true", default=False if top else argparse.SUPPRESS,
                   help="on an error, show the traceback")


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_synth, add_reproduce]
# What a user can get wrong: the library's own errors, files (OSError), values (ValueError).
USER_ERRORS = (AudiolensError, OSError, ValueError)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="audiolens", description="Logit lens tools for audio-language models.",
                    epilog=MAIN_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    _debug(parser, top=True)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def one_line(exc: BaseException) -> str:
    """``exc``'s message on one line (its type name when it has none)."""
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


@contextmanager
def one_line_warnings() -> Iterator[None]:
    """audiolens's own warnings print as one line, ``warning: <message> (<Class>)``, instead
    of Python's default two (file, line number, and the library's source line that warned);
    other libraries' warnings print as usual."""
    show = warnings.showwarning

    def one_line(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, AudiolensWarning):
            print(f"warning: {message} ({category.__name__})", file=file or sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    warnings.showwarning = one_line
    try:
        yield
    finally:
        warnings.showwarning = show


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code:
    0, or 2 after a one-line message on a user error (with ``--debug``: the traceback)."""
    args, extra = build_parser().parse_known_args(argv)
    if extra:  # said by the command's parser: "audiolens reproduce: error: ..."
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    debug = bool(args.debug)
    if not debug:
        # A download that fails is reported once, below; not as a retry per second first.
        logging.getLogger("huggingface_hub").setLevel(logging.ERROR)
    try:
        with one_line_warnings():
            return int(args.func(args))
    except USER_ERRORS as exc:
        if debug:
            raise
        print(f"audiolens {args.command}: error: {one_line(exc)}", file=sys.stderr)
        return USAGE


if __name__ == "__main__":
    sys.exit(main())
