"""Emulator rendering benchmark: the time the emulator spends shaping the pages of a mirror-mode harvest.

    python benchmarks/bench_emulator.py [--artists 200] [--repeat 5]

Renders every page a `harvest artist` of every artist asks for (release pages
with media, tracks, recordings, ISRCs, labels and release groups, cut at 500
tracks; recording pages with ISRCs and credits) of `generate_corpus(7)`, in
process, without HTTP or JSON encoding; prints the best CPU time of --repeat
runs (CPU time, not wall time: the machine is shared). In the mirror
benchmark (bench_harvest.py) requests are serial, so this time adds to the
harvest's wall time.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harvester.emulator import generate_corpus  # noqa: E402
from harvester.emulator.render import browse_body  # noqa: E402
from harvester.harvest import RECORDING_INCLUDES, RELEASE_INCLUDES  # noqa: E402


def render_all(corpus) -> int:
    pages = 0
    for ids in corpus.index.releases_by_artist.values():
        offset = 0
        while offset < len(ids):
            offset += len(browse_body(corpus, "release", ids, offset, 100, RELEASE_INCLUDES)["releases"])
            pages += 1
    for ids in corpus.index.recordings_by_artist.values():
        for offset in range(0, len(ids), 100):
            browse_body(corpus, "recording", ids, offset, 100, RECORDING_INCLUDES)
            pages += 1
    return pages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--artists", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    corpus = generate_corpus(7, artists=args.artists)
    corpus.index
    times = []
    for _ in range(args.repeat):
        started = time.process_time()
        pages = render_all(corpus)
        times.append(time.process_time() - started)
    print(f"{args.artists} artists, {pages} pages: best {min(times):.3f} s CPU, "
          f"{1000 * min(times) / pages:.2f} ms a page (of {args.repeat} runs)")


if __name__ == "__main__":
    main()
