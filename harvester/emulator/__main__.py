"""``python -m harvester.emulator``: serve a generated (or fixture) corpus; the URL is the first stdout line."""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path

from harvester.emulator.corpus import Corpus
from harvester.emulator.generate import generate_corpus
from harvester.emulator.server import FAULT_KINDS, Emulator


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
    parser.add_argument("--fixtures", type=Path, help="serve these WS/2 lookup bodies (*.json) instead")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.0, help="req/s per client IP; 0 = unlimited")
    parser.add_argument("--slow-seconds", type=float, default=2.0)
    parser.add_argument("--fault", action="append", default=[], metavar="N=KIND",
                        help=f"fault on request N; KIND one of {', '.join(FAULT_KINDS)} (503:SECONDS too)")
    parser.add_argument("--log", type=Path, help="append every request as a JSON line")
    args = parser.parse_args(argv)
    if args.fixtures:
        docs = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(args.fixtures.glob("*.json"))]
        corpus = Corpus.from_documents(d for d in docs if "id" in d)
    else:
        corpus = generate_corpus(args.seed, artists=args.artists)
    emulator = Emulator(corpus, rate=args.rate, faults=parse_faults(args.fault), slow_seconds=args.slow_seconds,
                        log_path=args.log, host=args.host, port=args.port)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(emulator.url, flush=True)
    try:
        emulator.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
