"""bench_foundation's reference mode: the from-scratch reference pairs with the K runs' fine-tuned models."""

from __future__ import annotations

import json

import pytest


def test_reference_pairs_with_the_fine_tuned_records_of_a_k_run(tmp_path):
    pytest.importorskip("torch")
    from benchmarks import bench_foundation as bench

    out = tmp_path / "ref"
    argv = ["--tasks", "low_dose", "--reference", "4", "--reference-steps", "2", "--n-test", "2", "--size", "32",
            "--no-progress", "--out", str(out)]
    assert bench.main(argv) == 0
    report = json.loads(out.with_suffix(".json").read_text(encoding="utf-8"))
    ref = report["reference"]
    name = bench.reference_method(4)
    assert ref["examples"] == 4 and {r["method"] for r in ref["records"]} >= {name, f"{bench.METHOD_UNET}, 4 examples"}
    # a K run whose fine-tuned model is the reference plus 1 dB on every sample
    shifted = [{**r, "method": bench.METHOD_FINETUNED, "psnr": r["psnr"] + 1.0} for r in ref["records"]
               if r["method"] == name]
    run = {"command": "k-run", "tasks": [{"task": "low_dose", "rows": [{"examples": 2, "records": shifted}]}]}
    (tmp_path / "k.json").write_text(json.dumps(run), encoding="utf-8")
    assert bench.main(argv + ["--replot", "--against", str(tmp_path / "k.json")]) == 0
    table = out.with_suffix(".md").read_text(encoding="utf-8")
    assert "fine-tuned K = 2 minus reference" in table and "`k-run`" in table
    reference_rows = [line for line in table.splitlines() if f"| {name} |" in line]
    assert len(reference_rows) == len(ref["test_sets"]) and all("| 1.00 ± 0.00 |" in line for line in reference_rows)


def test_against_adds_the_other_weights_fine_tuned_rows_paired_by_sample():
    from benchmarks import bench_foundation as bench

    def report(model, shift):
        records = [{"test_set": "in_distribution", "sample": k, "channel": 0, "method": bench.METHOD_FINETUNED,
                    "psnr": 20.0 + k + shift, "ssim": 0.5, "contrast_recovery": 0.5} for k in range(4)]
        return {"command": "c", "machine": "m", "date": "d", "model": model,
                "tasks": [{"task": "low_dose", "rows": [{"examples": 16, "test_sets": ["in_distribution"],
                                                         "records": records, "seconds": {bench.METHOD_FINETUNED: 1,
                                                                                         bench.METHOD_SCRATCH: 1}}]}]}

    mine, shipped = report("runs/brain", 0.0), report("foundation", 0.5)
    shipped["tasks"][0]["rows"][0]["examples"] = 64  # another K: not paired
    bench.add_other_models(mine, [shipped])
    assert len(mine["tasks"][0]["rows"][0]["records"]) == 4
    shipped["tasks"][0]["rows"][0]["examples"] = 16
    bench.add_other_models(mine, [shipped])
    table = bench.markdown(mine)
    line = next(row for row in table.splitlines() if "weights foundation" in row)
    assert line.rstrip().endswith("| -0.50 ± 0.00 |")  # this run's fine-tuned minus the shipped weights', per sample


def test_baselines_from_takes_scratch_and_unet_rows_and_refuses_other_samples(tmp_path):
    pytest.importorskip("torch")
    from benchmarks import bench_foundation as bench

    common = ["--tasks", "low_dose", "--examples", "2", "--n-test", "2", "--size", "32", "--steps", "1",
              "--scratch-steps", "1", "--no-unsupervised", "--no-progress"]
    first = tmp_path / "first"
    assert bench.main(common + ["--out", str(first)]) == 0
    second = tmp_path / "second"
    assert bench.main(common + ["--out", str(second), "--baselines-from", str(first.with_suffix(".json"))]) == 0
    before, after = (json.loads(p.with_suffix(".json").read_text(encoding="utf-8"))["tasks"][0]["rows"][0]
                     for p in (first, second))
    for method in (bench.METHOD_SCRATCH, bench.METHOD_UNET):
        assert [r for r in after["records"] if r["method"] == method] == \
            [r for r in before["records"] if r["method"] == method] != []
    assert after["baselines_from"].startswith("python -m benchmarks.bench_foundation")
    assert "are those of `python -m benchmarks.bench_foundation" in second.with_suffix(".md").read_text("utf-8")
    with pytest.raises(SystemExit):  # no row for K = 4: refused before any training
        bench.main(common[:3] + ["4"] + common[4:] + ["--out", str(tmp_path / "x"), "--baselines-from",
                                                      str(first.with_suffix(".json"))])
    with pytest.raises(ValueError, match="other test samples"):
        bench.main(common + ["--seed", "5", "--out", str(tmp_path / "y"), "--baselines-from",
                             str(first.with_suffix(".json"))])


def test_summary_tabulates_paired_differences_per_k_over_tasks(tmp_path):
    from benchmarks import bench_foundation as bench

    def records(method, shift, noise):
        return [{"test_set": "in_distribution", "sample": k, "channel": 0, "method": method,
                 "psnr": 20.0 + k + shift + noise * (-1) ** k, "ssim": 0.5, "contrast_recovery": 0.5}
                for k in range(4)]

    def row(k, scratch_shift):
        return {"examples": k, "test_sets": ["in_distribution"], "seconds": {},
                "records": records(bench.METHOD_FINETUNED, 0.0, 0.0) + records(bench.METHOD_SCRATCH, scratch_shift, 0)
                + records(bench.METHOD_UNET, 0.0, 1.0) + records(bench.METHOD_INPUT_FILTERED, -2.0, 0.0)}

    reports = [{"command": "a", "tasks": [{"task": "low_dose", "rows": [row(16, -0.5), row(64, 0.25)]}]},
               {"command": "b", "tasks": [{"task": "delayed_frame", "rows": [row(16, 0.0)]}]}]
    path = tmp_path / "summary.json"
    path.write_text(json.dumps(reports[0]), encoding="utf-8")
    (tmp_path / "b.json").write_text(json.dumps(reports[1]), encoding="utf-8")
    assert bench.main(["--summary", str(path), str(tmp_path / "b.json"), "--out", str(tmp_path / "table")]) == 0
    table = (tmp_path / "table.md").read_text(encoding="utf-8")
    k16 = table[table.index("## K = 16"):table.index("## K = 64")]
    assert "| low_dose | **+0.50 ± 0.00** | +0.00 ± 1.84 | 21.50 / 21.00 / 21.50 / 19.50 |" in k16
    assert "| delayed_frame | +0.00 ± 0.00 |" in k16  # no difference: not bold
    assert "| low_dose | **-0.25 ± 0.00** |" in table[table.index("## K = 64"):] and "`a`; `b`" in table
    assert (tmp_path / "table.png").stat().st_size > 0
    merged = bench.merge_reports([reports[1], reports[0], {"command": "c", "tasks": [
        {"task": "delayed_frame", "rows": [row(4, 0.0)]}]}])
    assert [t["task"] for t in merged["tasks"]] == ["delayed_frame", "low_dose"]
    assert [r["examples"] for r in merged["tasks"][0]["rows"]] == [4, 16]
