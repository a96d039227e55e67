"""The results writer and the paths that reports show."""

import json

from benchmarks.reports import shown_path, write_results


def test_shown_path_is_relative_inside_the_current_folder_and_absolute_outside(tmp_path, monkeypatch):
    inside = tmp_path / "ldm" / "weights" / "foundation"
    inside.mkdir(parents=True)
    outside = tmp_path.parent / "elsewhere"
    monkeypatch.chdir(tmp_path)
    assert shown_path(inside) == "ldm/weights/foundation"
    assert shown_path(outside) == str(outside.resolve())


def test_write_results_replaces_both_files(tmp_path):
    out = tmp_path / "results" / "bench"
    write_results(out, {"a": 1}, "first\n")
    write_results(out, {"a": 2}, "second\n")
    assert json.loads(out.with_suffix(".json").read_text()) == {"a": 2}
    assert out.with_suffix(".md").read_text() == "second\n"
    assert sorted(p.name for p in out.parent.iterdir()) == ["bench.json", "bench.md"]
