"""The ROI editor's server routes (Flask test client): pages, arrays, attention, specs, files, and bad input."""

from __future__ import annotations

import json
import os
import pathlib
import re

import numpy as np
import pytest

pytest.importorskip("flask")

from pet_projection.attention import RoiEditSpec
from tasks.cli import main as allpet  # noqa: E402
from pet_projection.simulation import SimulationConfig, write_dataset  # noqa: E402
from pet_projection.simulation.dataset_folder import SimulatedDataset  # noqa: E402
from tasks.viewer import ViewerError, ViewerSession, attention_for  # noqa: E402
from tasks.viewer.server import create_app, is_loopback  # noqa: E402

# for sample 1 of the dataset below, which has lesion_hot_1
SPEC = {"version": 1, "edits": [
    {"op": "add", "region": "brainstem", "weight": 0.5},
    {"op": "add", "region": "node", "weight": 1.0,
     "drawn": {"shape": "polygon", "vertices_mm": [[-20.0, -20.0], [20.0, -20.0], [0.0, 25.0]]}},
    {"op": "scale", "region": "lesion_hot_1", "factor": 0.5}]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("viewer") / "brains"
    config = SimulationConfig(size=32, n_views=24, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=3, progress=False)
    return root


@pytest.fixture
def client(dataset: pathlib.Path):
    session = ViewerSession(dataset)
    return create_app(session).test_client()


def test_page_and_sample_summary(client, dataset: pathlib.Path) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b"ALL-PET ROI editor" in page.data
    info = client.get("/api/sample/1").get_json()
    assert info["n_samples"] == 2 and info["image_shape"] == [32, 32] and info["n_slices"] == 1
    names = {region["name"]: region for region in info["regions"]}
    assert names["brainstem"]["weight"] == 0.0 and names["lesion_hot_1"]["weight"] == 1.0
    assert names["brainstem"]["label"] == SimulatedDataset(dataset)[1].names["brainstem"]


def test_arrays_are_the_osem_image_labels_and_sinogram(client, dataset: pathlib.Path) -> None:
    arrays = client.get("/api/sample/0/arrays?slice=0").get_json()
    sample = SimulatedDataset(dataset)[0]
    np.testing.assert_array_equal(np.array(arrays["labels"]), sample.labels)
    np.testing.assert_allclose(np.array(arrays["sinogram"]), sample.input, atol=1e-6)
    image = np.array(arrays["image"])
    assert image.shape == (32, 32) and image.min() >= 0
    assert np.corrcoef(image.ravel(), sample.input_image.ravel())[0, 1] > 0.8  # OSEM of the input looks like it


def test_attention_route_equals_the_python_api(client, dataset: pathlib.Path) -> None:
    sample = SimulatedDataset(dataset)[1]
    for spec in ({"edits": []}, SPEC):
        result = client.post("/api/sample/1/attention", json={"spec": spec, "slice": 0}).get_json()
        maps = attention_for(sample, RoiEditSpec.from_dict(spec))
        np.testing.assert_allclose(np.array(result["image_attention"]), maps.image, atol=1e-6)
        np.testing.assert_allclose(np.array(result["sinogram_attention"]), maps.sinogram, atol=1e-6)
        assert result["n_edits"] == len(spec["edits"])
    # the brainstem (weight 0 by default) gains attention only through its edit
    brainstem = sample.region_table().mask("brainstem")
    default = attention_for(sample).image
    edited = attention_for(sample, RoiEditSpec.from_dict({"edits": SPEC["edits"][:1]})).image
    assert default[brainstem].max() == 0.0 and edited[brainstem].max() == pytest.approx(0.5)


@pytest.mark.parametrize("body, message", [
    ("not json", "must be a JSON object"),
    ({"slice": 0}, "must be a JSON object"),
    ({"spec": {"edits": [{"op": "paint", "region": "x"}]}}, "malformed ROI edit spec: .*op"),
    ({"spec": {"edits": [{"op": "add", "region": "nowhere"}]}}, "unknown region 'nowhere'"),
    ({"spec": {"edits": []}, "slice": "top"}, "slice must be an integer"),
    ({"spec": {"edits": [{"op": "scale", "region": "brainstem", "factor": -1}]}}, "factor"),
])
def test_bad_attention_requests_get_clear_400s(client, body, message: str) -> None:
    response = (client.post("/api/sample/1/attention", data=body, content_type="text/plain") if isinstance(body, str)
                else client.post("/api/sample/1/attention", json=body))
    assert response.status_code == 400
    assert re.search(message, response.get_json()["error"])


def test_unknown_samples(client) -> None:
    assert client.get("/api/sample/7").status_code == 400
    assert "does not exist" in client.get("/api/sample/7").get_json()["error"]
    assert client.get("/api/sample/-1").status_code == 400
    assert client.get("/api/nothing").status_code == 404


def test_specs_save_load_and_reproduce_the_attention(client, dataset: pathlib.Path, tmp_path: pathlib.Path) -> None:
    saved = client.put("/api/specs/brainstem_half", json=SPEC).get_json()
    assert saved["saved"] == "roi_edits/brainstem_half.json" and "brainstem_half" in saved["specs"]
    path = dataset / "roi_edits" / "brainstem_half.json"
    assert RoiEditSpec.from_json(path.read_text()) == RoiEditSpec.from_dict(SPEC)
    assert client.get("/api/specs").get_json()["specs"] == ["brainstem_half"]
    assert client.get("/api/specs/brainstem_half").get_json()["spec"] == RoiEditSpec.from_dict(SPEC).to_dict()
    # the saved file reproduces the page's attention from the command line
    out = tmp_path / "attention.npz"
    assert allpet(["attention", str(dataset), "--index", "1", "--spec", str(path), "--out", str(out)]) == 0
    page = client.post("/api/sample/1/attention", json={"spec": SPEC}).get_json()
    with np.load(out) as archive:
        np.testing.assert_allclose(archive["sinogram"], np.array(page["sinogram_attention"]), atol=1e-6)
    with client.get("/files/roi_edits/brainstem_half.json") as downloaded:  # closes the file Flask sent
        assert downloaded.status_code == 200 and json.loads(downloaded.data)["edits"][0]["region"] == "brainstem"


@pytest.mark.parametrize("name", ["..%2F..%2Fevil", "a b", "-leading", "x" * 65])
def test_bad_spec_names_write_nothing(client, dataset: pathlib.Path, name: str) -> None:
    before = sorted(p.name for p in dataset.rglob("*"))
    response = client.put(f"/api/specs/{name}", json=SPEC)
    assert response.status_code in (400, 404)
    assert sorted(p.name for p in dataset.rglob("*")) == before


def test_malformed_specs_are_not_saved(client, dataset: pathlib.Path) -> None:
    response = client.put("/api/specs/broken", json={"edits": [{"op": "add"}]})
    assert response.status_code == 400 and "malformed ROI edit spec" in response.get_json()["error"]
    assert not (dataset / "roi_edits" / "broken.json").exists()
    assert client.get("/api/specs/missing").status_code == 400


def test_files_outside_the_folder_are_refused(client, dataset: pathlib.Path) -> None:
    response = client.get("/files/%2E%2E/%2E%2E/etc/passwd")
    assert response.status_code in (400, 404) and b"root:" not in response.data
    os.symlink("/etc", dataset / "escape")
    try:
        response = client.get("/files/escape/passwd")
        assert response.status_code == 400 and "outside the viewer's folder" in response.get_json()["error"]
    finally:
        (dataset / "escape").unlink()
    with client.get("/files/manifest.json") as response:
        assert response.status_code == 200


def test_model_outputs_are_shown_with_error_maps(dataset: pathlib.Path) -> None:
    samples = SimulatedDataset(dataset)
    outputs = dataset / "outputs.npz"
    np.savez(outputs, sinogram=np.stack([s.target + 1.0 for s in samples]),
             image=np.stack([s.target_image for s in samples]))
    client = create_app(ViewerSession(dataset, outputs)).test_client()
    arrays = client.get("/api/sample/1/arrays").get_json()
    np.testing.assert_allclose(np.array(arrays["error"]), 1.0, atol=1e-5)
    np.testing.assert_allclose(np.array(arrays["image_error"]), 0.0, atol=1e-5)
    assert client.get("/api/sample/1").get_json()["has_outputs"]
    with pytest.raises(ViewerError, match="must lie under the viewer's folder"):
        ViewerSession(dataset, "/tmp/elsewhere.npz")


def test_only_loopback_addresses_without_allow_remote(dataset: pathlib.Path, capsys) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.20") and not is_loopback("example.org")
    assert allpet(["view", str(dataset), "--host", "0.0.0.0"]) == 2
    assert "refusing to bind to 0.0.0.0" in capsys.readouterr().err
    assert allpet(["view", str(dataset / "samples")]) == 2
    assert "not an allpet simulate dataset" in capsys.readouterr().err


def test_a_single_sample_file_and_a_3d_dataset(tmp_path: pathlib.Path) -> None:
    config = SimulationConfig(dim=3, size=16, n_slices=6, anatomy="brain", n_lesions=(1, 1), view_step=40)
    write_dataset(tmp_path / "d3", "low_dose", 1, config, seed=1, progress=False)
    sample_file = next((tmp_path / "d3" / "samples").glob("*.npz"))
    client = create_app(ViewerSession(sample_file)).test_client()
    info = client.get("/api/sample/0").get_json()
    assert info["n_slices"] == 6 and info["image_shape"] == [6, 16, 16]
    arrays = client.get("/api/sample/0/arrays?slice=3").get_json()
    assert np.array(arrays["image"]).shape == (16, 16) and np.array(arrays["sinogram"]).ndim == 2
    result = client.post("/api/sample/0/attention", json={"spec": {"edits": []}, "slice": 3}).get_json()
    assert np.array(result["image_attention"]).shape == (16, 16)
    # a spec saved next to a single sample lands in the sample's folder
    assert client.put("/api/specs/one", json={"edits": []}).status_code == 200
    assert (tmp_path / "d3" / "samples" / "roi_edits" / "one.json").is_file()


def test_checkpoint_outputs_are_sampled_once_into_the_folder(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("torch")
    from tasks.cli import train as train_cli
    from tasks.cli.view import OUTPUTS_FOLDER, _sample_outputs

    run = tmp_path / "run"
    assert train_cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", "data.image_size=16",
                           "data.n_views=16", "data.n_bins=16", "data.n_bases=4", "train.batch_size=2",
                           "train.stages.autoencoder.steps=1", "train.stages.diffusion.steps=1",
                           "train.checkpoint_every=1", "train.cpu_threads=1"]) == 0
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    write_dataset(tmp_path / "d", "low_dose", 2, config, seed=0, progress=False)
    outputs = _sample_outputs(run, (tmp_path / "d").resolve())
    assert outputs == (tmp_path / "d" / OUTPUTS_FOLDER / "samples.npz").resolve()
    client = create_app(ViewerSession(tmp_path / "d", outputs)).test_client()
    arrays = client.get("/api/sample/1/arrays").get_json()
    assert np.array(arrays["output"]).shape == (16, 16) and np.array(arrays["output_image"]).shape == (16, 16)
    assert np.all(np.isfinite(np.array(arrays["error"])))
