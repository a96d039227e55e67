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
