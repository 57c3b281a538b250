"""``python -m harvester.emulator``: serve a generated (or fixture) corpus; the URL is the first stdout line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harvester.emulator.corpus import Corpus, documents_in_folder
from harvester.emulator.generate import generate_corpus
from harvester.emulator.server import FAULT_KINDS, Emulator
from harvester.emulator.serving import serve_until_stopped


def parse_faults(specs: list[str]) -> dict[int, str]:
    faults = {}
    for spec in specs:
        number, _, kind = spec.partition("=")
        faults[int(number)] = kind
    return faults


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harvester.emulator", description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--artists", type=int, default=20)
    parser.add_argument("--fixtures", type=Path, metavar="DIR",
                        help="serve the WS/2 lookup bodies (*.json, subfolders too) in DIR instead")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="req/s per client IP; 0 = unlimited")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--fault", action="append", default=[], metavar="N=KIND",
                        help=f"fault on request N; KIND one of {', '.join(FAULT_KINDS)} (503:SECONDS too)")
    parser.add_argument("--shift", type=int, default=0, metavar="N",
                        help="after the first page of each browse, move its last N items to its front "
                             "(a catalogue changing mid-harvest)")
    parser.add_argument("--log", type=Path, help="append every request as a JSON line")
    args = parser.parse_args(argv)
    if args.fixtures:
        if not args.fixtures.is_dir():
            parser.error(f"--fixtures {args.fixtures}: not a folder")
        corpus = Corpus.from_documents(documents_in_folder(args.fixtures))
    else:
        corpus = generate_corpus(args.seed, artists=args.artists)
    emulator = Emulator(corpus, rate=args.rate, faults=parse_faults(args.fault), slow_seconds=args.slow_seconds,
                        log_path=args.log, host=args.host, port=args.port, shift=args.shift)
    return serve_until_stopped(emulator, emulator.url)


if __name__ == "__main__":
    sys.exit(main())
