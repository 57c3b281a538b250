"""mbharvest: lawful, rate-limited harvesting of open MusicBrainz metadata into SQLite."""

__version__ = "0.1.0"
