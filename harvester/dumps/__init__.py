"""Import the MusicBrainz JSON data dumps (`mbharvest import-dump`).

reading: a dump file as a stream of lines (archives, bare files, pipes);
staging: the lines' rows into sorted runs on disk (runs: their format);
merge: the runs into the database in one transaction; importer: the two
steps, resumably, recorded in the ledger.
"""

from harvester.dumps.importer import (BATCH_LINES, DumpResult, ImportOptions, Progress, check_paths,
                                      format_progress, import_dump, import_dumps)
from harvester.dumps.reading import DumpError, dump_time

__all__ = ["BATCH_LINES", "DumpError", "DumpResult", "ImportOptions", "Progress", "check_paths", "dump_time",
           "format_progress", "import_dump", "import_dumps"]
