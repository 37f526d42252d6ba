"""The ``audiolens`` command line.

Each subcommand is a pair of functions: ``add_<name>(subparsers)`` declares its arguments and
sets ``func`` to ``run_<name>(args) -> int``. Adding a command means adding a pair and listing
it in :data:`COMMANDS`.

Example:
    >>> main(["synth", "--out", "/tmp/synth", "--per-label", "2"])  # doctest: +SKIP
    0
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path


def add_synth(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="synthesize a SAKURA-layout data set with espeak-ng",
        description="Write DIR/data/{Gender,Language}/audio/*.wav and metadata.csv "
        "(16 kHz mono 16-bit), deterministic for a seed.",
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
        "--per-label", type=int, default=50, metavar="N", help="clips per label (default 50)"
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--split",
        choices=["train", "test"],
        default=None,
        help="held-out split: test uses sentences and voices never used by train",
    )
    p.add_argument(
        "--workers", type=int, default=2, help="parallel espeak-ng processes (default 2)"
    )
    p.set_defaults(func=run_synth)


def run_synth(args: argparse.Namespace) -> int:
    from audiolens.data import load_sakura
    from audiolens.data.synth import SynthError, synthesize

    try:
        root = synthesize(
            args.out,
            args.tracks,
            n_per_label=args.per_label,
            seed=args.seed,
            split=args.split,
            workers=args.workers,
        )
    except (SynthError, ValueError) as exc:
        print(f"audiolens synth: error: {exc}", file=sys.stderr)
        return 1
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
    )
    p.add_argument("--model", default=None, metavar="M", help="checkpoint id or folder")
    p.add_argument("--data", default=None, type=Path, metavar="D", help="SAKURA checkout")
    p.add_argument("--out", default=Path("results"), type=Path, metavar="O", help="output folder (default results/)")
    p.add_argument("--attributes", nargs="+", default=None, help="attributes (default: all found)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N", help="rows per forward pass (default 8)")
    p.add_argument("--per-label", type=int, default=None, metavar="N",
                   help="synthesized clips per label when no --data is given (default 16)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                   help="when another run is writing this model's records into --out, wait up "
                   "to SECONDS for it to finish (default: stop at once with 'folder busy')")
    p.set_defaults(func=run_reproduce)


def run_reproduce(args: argparse.Namespace) -> int:
    from audiolens.architectures import ArchitectureError
    from audiolens.audio import AudioError
    from audiolens.data import DataError, SynthError
    from audiolens.study.distributed import RankError
    from audiolens.study.records import RecordError
    from audiolens.study.reproduce import DEFAULT_PER_LABEL, reproduce

    try:
        reproduce(
            args.model, args.data, args.out, attributes=args.attributes, batch_size=args.batch_size,
            n_per_label=args.per_label or DEFAULT_PER_LABEL, seed=args.seed, wait=args.wait,
        )
    except (SynthError, DataError, AudioError, RecordError, RankError, FileNotFoundError,
            ArchitectureError) as exc:  # bad input: no traceback
        print(f"audiolens reproduce: error: {exc}", file=sys.stderr)
        return 1
    return 0


COMMANDS: list[Callable[[argparse._SubParsersAction], None]] = [add_synth, add_reproduce]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="audiolens", description="Logit lens tools for audio-language models."
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
