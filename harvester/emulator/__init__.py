"""A local WS/2 server over an in-memory corpus, for tests, benchmarks and the offline demo."""

from harvester.emulator.corpus import Corpus
from harvester.emulator.generate import generate_corpus
from harvester.emulator.server import FAULT_KINDS, Emulator

__all__ = ["Corpus", "Emulator", "FAULT_KINDS", "generate_corpus"]
