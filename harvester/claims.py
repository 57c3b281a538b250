"""The figures the 2025 Spotify-scrape articles published (see
shared/docs/article-claims.md), which the report, the Datasette canned
queries and the statistics set beside this database's own."""

CLAIM_ISRCS = 186_000_000  # C2: unique ISRCs
CLAIM_TRACKS = 256_000_000  # C1: tracks of metadata
CLAIM_MB_ENTRIES = 5_000_000  # C4: "MusicBrainz has ~5 M entries", 186 M being "37 times" that
CLAIM_LENGTH_MINUTES = (2, 3, 4)  # C6: track lengths cluster here
CLAIM_YEAR = 2023  # C7: over 10 million albums dated 2023
