"""`mbharvest report`: every claim C1-C8 present with this database's figures,
valid PNG plots, a self-contained HTML file, a clear word when empty."""

import base64
import math
import re
import struct

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.report import PLOTS, _describe_runs, write_report
from harvester.store import open_db
from tests.test_stats import expected, store_corpus, synthetic_corpus

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, which must come first."""
    assert data[:8] == PNG_SIGNATURE
    length, chunk_type = struct.unpack(">I4s", data[8:16])
    assert chunk_type == b"IHDR" and length == 13
    width, height = struct.unpack(">II", data[16:24])
    assert data[-12:-8] == b"\x00\x00\x00\x00" and data[-8:-4] == b"IEND"
    return width, height


def claim_rows(markdown: str) -> dict[str, list[str]]:
    rows = {}
    for line in markdown.splitlines():
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if cells and re.fullmatch(r"C[1-8]", cells[0]):
            rows[cells[0]] = cells
    return rows


@pytest.fixture
def synthetic(tmp_path):
    db = open_db(tmp_path / "synthetic.db")
    corpus = synthetic_corpus()
    store_corpus(db, corpus)
    return db, corpus


def test_report_files_and_plots(synthetic, tmp_path):
    db, _ = synthetic
    out = tmp_path / "report"
    written = write_report(db, out)
    names = {p.name for p in written}
    assert names == {name for name, _, _ in PLOTS} | {"report.md", "report.html"}
    for name, _, _ in PLOTS:
        width, height = png_size((out / name).read_bytes())
        assert (width, height) == (1000, 500), name


def test_every_claim_with_figures(synthetic, tmp_path):
    db, corpus = synthetic
    truth = expected(corpus)
    write_report(db, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    rows = claim_rows(markdown)
    assert sorted(rows) == [f"C{i}" for i in range(1, 9)]
    assert all(len(cells) == 5 and all(cells) for cells in rows.values())
    assert f"{truth['recordings']:,} recordings" in rows["C1"][2] and f"{truth['tracks']:,} tracks" in rows["C1"][2]
    assert f"{truth['isrcs_unique']:,} distinct ISRCs" in rows["C2"][2]
    assert rows["C3"][2] == "not applicable" and "never fetches audio" in rows["C3"][3]
    assert "releases" in rows["C4"][2] and "5,090,000" in rows["C4"][2] and "36.5x" in rows["C4"][2]
    assert "popularity is not in MusicBrainz" in rows["C5"][3] and "no proxy" in rows["C5"][4]
    assert f"releases dated 2023: {truth['releases_per_year']['2023']:,}" in rows["C7"][2]
    albums_2023 = truth["release_groups_per_year_by_type"]["Album"].get("2023", 0)
    assert f"type Album first released in 2023: {albums_2023:,}" in rows["C7"][2]
    assert "sample" in rows["C8"][4]
    assert "| distinct ISRCs in this database |" in markdown  # the C4 candidates table


def test_length_peaks_listed_near_the_synthetic_centres(synthetic, tmp_path):
    db, _ = synthetic
    write_report(db, tmp_path)
    rows = claim_rows((tmp_path / "report.md").read_text())
    found = re.findall(r"(\d+):(\d\d)", rows["C6"][2].split("(")[0])
    seconds = sorted(int(m) * 60 + int(s) for m, s in found)
    assert len(seconds) == 3 and all(abs(s - c) <= 10 for s, c in zip(seconds, (120, 180, 240)))


def test_html_is_self_contained(synthetic, tmp_path):
    db, _ = synthetic
    write_report(db, tmp_path)
    page = (tmp_path / "report.html").read_text()
    sources = re.findall(r'src="([^"]*)"', page)
    assert len(sources) == len(PLOTS) and all(s.startswith("data:image/png;base64,") for s in sources)
    embedded = {base64.b64decode(s.split(",", 1)[1]) for s in sources}
    assert embedded == {(tmp_path / name).read_bytes() for name, _, _ in PLOTS}
    assert "<link" not in page and "http" not in re.sub(r'src="data:[^"]*"', "", page)
    assert all(f"<td>C{i}</td>" in page for i in range(1, 9))


def test_coverage_names_the_seeds(synthetic, tmp_path):
    db, _ = synthetic
    db["harvest_run"].insert({"id": 1, "command": "harvest artist",
                              "args": '{"keys": ["5b11f4ce-a62d-471e-81fc-a69a8278c7da"]}',
                              "started_at": "2026-01-01T00:00:00Z", "finished_at": "2026-01-01T00:10:00Z",
                              "status": "finished"})
    db.conn.commit()
    write_report(db, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "harvested sample" in markdown
    assert "`mbharvest harvest artist 5b11f4ce-a62d-471e-81fc-a69a8278c7da` started 2026-01-01T00:00:00Z" in markdown
    assert "| recordings | " in markdown and "36,900,000" in markdown


def test_coverage_names_a_dump_import(synthetic, tmp_path):
    db, _ = synthetic
    db["harvest_run"].insert({"id": 1, "command": "import-dump", "args": '{"paths": ["recording.tar.xz"]}',
                              "started_at": "2026-01-02T00:00:00Z", "status": "complete"})
    db.execute("UPDATE release SET source = 'dump:20251122-001001'")
    db.conn.commit()
    write_report(db, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    assert "dump import" in markdown and "`mbharvest import-dump paths=['recording.tar.xz']`" in markdown
    assert "dumps: `dump:20251122-001001`" in markdown
    assert "whole catalogue as of its dump" in claim_rows(markdown)["C8"][4]


def test_empty_database_report_says_so(tmp_path):
    path = tmp_path / "empty.db"
    open_db(path).close()
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["report", "--db", str(path), "--out", str(out), "-v"])
    assert result.exit_code == 0, result.output
    assert f"in {out}" in result.output
    markdown = (out / "report.md").read_text()
    assert "The database is empty" in markdown
    assert sorted(claim_rows(markdown)) == [f"C{i}" for i in range(1, 9)]
    for name, _, _ in PLOTS:
        assert png_size((out / name).read_bytes()) == (1000, 500)


def test_report_default_folder_is_beside_the_database(synthetic, tmp_path):
    db, _ = synthetic
    db.close()
    result = CliRunner().invoke(cli, ["report", "--db", str(tmp_path / "synthetic.db")])
    assert result.exit_code == 0, result.output
    assert result.output == ""  # not a terminal and no -v: nothing on stdout
    assert (tmp_path / "report" / "report.html").is_file()


# -- plots that tell the truth ----------------------------------------------------------------------------------

def visible_ticks(axis, limits) -> list[tuple[float, str]]:
    low, high = sorted(limits)
    return [(tick.get_loc(), tick.label1.get_text()) for tick in axis.get_major_ticks()
            if low <= tick.get_loc() <= high and tick.label1.get_visible()]


def render(figure) -> None:
    """Lay the figure out and draw it as the report's PNGs are drawn: a Figure made without pyplot has only the
    base canvas, whose draw() does nothing (its ticks would keep no position and no label)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure).draw()


def as_number(label: str) -> float:
    return float(label.replace(",", "").replace("\u2212", "-"))


def small_stats(stats: dict) -> dict:
    """Counts small enough that matplotlib's default ticks would be fractional (0, 2.5, 5, 7.5)."""
    return {**stats, "isrc_countries": {"GB": 7, "US": 3, "DE": 1}, "isrc_reference_years": {"2001": 3, "2019": 1},
            "releases_per_year": {"1999": 1, "2001": 3, "unknown": 2},
            "release_groups_per_year_by_type": {"Album": {"1999": 1, "2001": 2}, "Single": {"2001": 1}}}


EMPTY_WITH_THESE_STATS = {"streaming_links.png"}  # the synthetic corpus has no links (tests/test_open_data.py draws it)


@pytest.mark.parametrize("name", [name for name, _, _ in PLOTS])
def test_every_tick_label_says_its_value_and_none_repeats(synthetic, name):
    from harvester.report import compute_stats

    db, _ = synthetic
    draw = dict((n, d) for n, _, d in PLOTS)[name]
    checked = 0
    for stats in (compute_stats(db), small_stats(compute_stats(db))):
        figure = draw(stats)
        render(figure)
        axes = figure.axes[0]
        for axis, limits in ((axes.xaxis, axes.get_xlim()), (axes.yaxis, axes.get_ylim())):
            ticks = visible_ticks(axis, limits)
            numeric = [(value, label) for value, label in ticks if re.fullmatch(r"[\d,.\u2212-]+", label)]
            assert all(math.isclose(as_number(label), value, rel_tol=1e-9) for value, label in numeric), (name, ticks)
            labels = [label for _, label in ticks if label]
            assert len(labels) == len(set(labels)), (name, labels)
            checked += len(numeric)
    assert checked or name in EMPTY_WITH_THESE_STATS, name  # the check saw labels (not a canvas that never drew)


def test_the_claims_are_drawn_on_the_plots_they_concern(synthetic):
    from harvester.report import compute_stats, draw_lengths, draw_release_groups_by_type, draw_releases_per_year

    db, _ = synthetic
    stats = compute_stats(db)

    def vertical_lines(figure) -> set[float]:
        return {line.get_xdata()[0] for line in figure.axes[0].lines
                if len(set(line.get_xdata())) == 1 and line.get_linestyle() == "--"}
    assert vertical_lines(draw_lengths(stats)) == {2, 3, 4}
    assert vertical_lines(draw_releases_per_year(stats)) == {2023}
    assert vertical_lines(draw_release_groups_by_type(stats)) == {2023}
    legend = [text.get_text() for text in draw_lengths(stats).axes[0].get_legend().get_texts()]
    assert any("2, 3 and 4 minutes" in text for text in legend)


def test_the_report_lists_every_year(synthetic, tmp_path):
    db, corpus = synthetic
    truth = expected(corpus)
    write_report(db, tmp_path)
    markdown = (tmp_path / "report.md").read_text()
    years = re.findall(r"^\| (\d{4}|unknown) \| ([\d,]+) \|$", markdown, re.M)
    assert {year: int(n.replace(",", "")) for year, n in years} == truth["releases_per_year"]
    assert min(truth["releases_per_year"]) < "2010"  # the years a cut at 2010 used to hide


def test_a_run_without_an_end_says_so_once():
    """A run killed outright has no finished_at (a later run marks it interrupted)."""
    runs = [{"command": "import-dump", "args": None, "started_at": "2026-11-30T23:12:53Z", "finished_at": None,
             "status": "interrupted"},
            {"command": "import-dump", "args": None, "started_at": "2026-11-30T23:25:49Z",
             "finished_at": "2026-12-01T00:10:09Z", "status": "complete"}]
    assert _describe_runs(runs) == [
        "`mbharvest import-dump` started 2026-11-30T23:12:53Z, with no end recorded (interrupted)",
        "`mbharvest import-dump` started 2026-11-30T23:25:49Z, finished 2026-12-01T00:10:09Z (complete)"]
