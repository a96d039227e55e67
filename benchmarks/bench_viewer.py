"""Latency of the ROI editor's attention update (the page's round trip minus the browser), for 128 x 128 data.

A 2D brain sample of 128 x 128 pixels and 128 views x 128 bins (the simulator's
default) is served by the Flask app; each edit spec is posted to
``/api/sample/0/attention`` through Flask's test client, so the time includes
the TMA computation, JSON encoding and the request handling (not the network
or the browser's drawing). Target (issue 10): under a second per update.

Usage::

    python -m benchmarks.bench_viewer        # writes benchmarks/results/viewer_cpu.json
"""

from __future__ import annotations

import json
import platform
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results" / "viewer_cpu.json"
SPECS = {
    "no edits": {"edits": []},
    "re-weight a label": {"edits": [{"op": "add", "region": "brainstem", "weight": 0.5}]},
    "draw a polygon": {"edits": [{"op": "add", "region": "node", "weight": 1.0, "drawn": {
        "shape": "polygon", "vertices_mm": [[-30.0, -20.0], [10.0, -25.0], [0.0, 20.0]]}}]},
    "five edits": {"edits": [{"op": "add", "region": "brainstem", "weight": 0.5},
                             {"op": "add", "region": "cerebellum", "weight": 0.3},
                             {"op": "scale", "region": "brainstem", "factor": 0.5},
                             {"op": "add", "region": "node", "weight": 1.0, "drawn": {
                                 "shape": "circle", "center_mm": [20.0, 10.0], "radius_mm": 12.0}},
                             {"op": "remove", "region": "cerebellum"}]},
}


def main() -> int:
    from pet_projection.simulation import SimulationConfig, write_dataset
    from tasks.viewer import ViewerSession
    from tasks.viewer.server import create_app

    with tempfile.TemporaryDirectory() as folder:
        write_dataset(Path(folder) / "d", "low_dose", 1, SimulationConfig(anatomy="brain", n_lesions=(2, 2)),
                      seed=1, progress=False)
        client = create_app(ViewerSession(Path(folder) / "d")).test_client()
        client.post("/api/sample/0/attention", json={"spec": {"edits": []}})  # compile and warm up
        rows = []
        for name, spec in SPECS.items():
            times = []
            for _ in range(5):
                start = time.perf_counter()
                response = client.post("/api/sample/0/attention", json={"spec": spec})
                times.append(time.perf_counter() - start)
                assert response.status_code == 200, response.get_json()
            rows.append({"spec": name, "median_s": sorted(times)[2], "max_s": max(times),
                         "server_compute_s": response.get_json()["seconds"]})
    result = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "machine": platform.processor() or platform.machine(),
              "problem": "2D brain, 128 x 128 pixels, sinogram 128 views x 128 bins", "target_s": 1.0, "rows": rows}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for row in rows:
        print(f"{row['spec']:20s} median {row['median_s'] * 1000:7.1f} ms, max {row['max_s'] * 1000:7.1f} ms")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
