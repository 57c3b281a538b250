"""mbharvest: lawful, rate-limited harvesting of open MusicBrainz metadata into SQLite."""

__version__ = "0.2.0"
