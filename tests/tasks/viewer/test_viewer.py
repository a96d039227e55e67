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

# Flask's test client sends "Host: localhost" (port 80): the app must be told it is served there
TEST_PORT = 80

# for sample 1 of the dataset below: an anatomical region of its labels, a drawn one, the segmented hyper regions
SPEC = {"version": 1, "edits": [
    {"op": "add", "region": "brainstem", "weight": 0.5},
    {"op": "add", "region": "node", "weight": 1.0,
     "drawn": {"shape": "polygon", "vertices_mm": [[-20.0, -20.0], [20.0, -20.0], [0.0, 25.0]]}},
    {"op": "scale", "region": "hyper", "factor": 0.5}]}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    root = tmp_path_factory.mktemp("viewer") / "brains"
    config = SimulationConfig(size=32, n_views=24, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=17, progress=False)  # sample 1 holds a lesion and the brainstem
    return root


@pytest.fixture
def client(dataset: pathlib.Path):
    session = ViewerSession(dataset)
    return create_app(session, port=TEST_PORT).test_client()


def test_page_and_sample_summary(client, dataset: pathlib.Path) -> None:
    page = client.get("/")
    assert page.status_code == 200 and b"ALL-PET ROI editor" in page.data
    info = client.get("/api/sample/1").get_json()
    assert info["n_samples"] == 2 and info["image_shape"] == [32, 32] and info["n_slices"] == 1
    names = {region["name"]: region for region in info["regions"]}
    assert names["brainstem"]["weight"] == 0.0 and names["brainstem"]["label"] == SimulatedDataset(dataset)[1].names[
        "brainstem"]
    # the lesions are the segmented regions of the input, not the simulator's lesion labels
    assert names["hyper"] == {"name": "hyper", "label": None, "weight": 1.0} and names["hypo"]["weight"] == 1.0
    assert not any(name.startswith("lesion") for name in names)


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
    client = create_app(ViewerSession(dataset, outputs), port=TEST_PORT).test_client()
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
    client = create_app(ViewerSession(sample_file), port=TEST_PORT).test_client()
    info = client.get("/api/sample/0").get_json()
    assert info["n_slices"] == 6 and info["image_shape"] == [6, 16, 16]
    arrays = client.get("/api/sample/0/arrays?slice=3").get_json()
    assert np.array(arrays["image"]).shape == (16, 16) and np.array(arrays["sinogram"]).ndim == 2
    result = client.post("/api/sample/0/attention", json={"spec": {"edits": []}, "slice": 3}).get_json()
    assert np.array(result["image_attention"]).shape == (16, 16)
    # a spec saved next to a single sample lands in the sample's folder
    assert client.put("/api/specs/one", json={"edits": []}).status_code == 200
    assert (tmp_path / "d3" / "samples" / "roi_edits" / "one.json").is_file()


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory: pytest.TempPathFactory) -> tuple[pathlib.Path, pathlib.Path]:
    """A 16 x 16 low-dose brain folder and a tiny model of its task (1 training step per stage)."""
    pytest.importorskip("torch")
    from tasks.cli import train as train_cli

    root = tmp_path_factory.mktemp("viewer_model")
    folder, run = root / "d", root / "run"
    config = SimulationConfig(size=16, n_views=16, anatomy="brain")
    write_dataset(folder, "low_dose", 2, config, seed=0, progress=False)
    # a model of the folder's task (a model for another task is refused: tests/tasks/cli)
    assert train_cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", "data.image_size=16",
                           "data.n_views=16", "data.n_bins=16", "data.source=folder", "data.task=paired",
                           f"data.path={folder}", "train.batch_size=2",
                           "train.stages.autoencoder.steps=1", "train.stages.diffusion.steps=1",
                           "train.checkpoint_every=1", "train.cpu_threads=1"]) == 0
    return folder, run


def test_checkpoint_outputs_are_sampled_once_into_the_folder(model_folder) -> None:
    from tasks.checkpoint_sampler import CheckpointSampler
    from tasks.cli.view import OUTPUTS_FOLDER, _sample_outputs

    folder, run = model_folder
    outputs = _sample_outputs(CheckpointSampler(run), folder.resolve())
    assert outputs == (folder / OUTPUTS_FOLDER / "samples.npz").resolve()
    client = create_app(ViewerSession(folder, outputs), port=TEST_PORT).test_client()
    arrays = client.get("/api/sample/1/arrays").get_json()
    assert np.array(arrays["output"]).shape == (16, 16) and np.array(arrays["output_image"]).shape == (16, 16)
    assert np.all(np.isfinite(np.array(arrays["error"])))


# a region drawn on the 16 x 16 brains (256 mm field of view), up-weighted
DRAWN = {"version": 1, "edits": [{"op": "add", "region": "node", "weight": 1.0,
                                  "drawn": {"shape": "polygon", "vertices_mm": [[-40, -40], [40, -40], [0, 50]]}}]}


@pytest.fixture(scope="module")
def model_session(model_folder) -> ViewerSession:
    from tasks.checkpoint_sampler import CheckpointSampler

    folder, run = model_folder
    return ViewerSession(folder, sampler=CheckpointSampler(run, "cpu"))


def test_apply_samples_again_with_the_edited_attention(model_session: ViewerSession) -> None:
    from tasks.checkpoint_sampler import SamplingSettings

    client = create_app(model_session, port=TEST_PORT).test_client()
    assert client.get("/api/sample/1").get_json()["has_model"]
    answer = client.post("/api/sample/1/apply", json={"spec": DRAWN, "slice": 0})
    assert answer.status_code == 200, answer.get_json()
    result = {key: np.array(value) for key, value in answer.get_json().items()}
    assert result["n_edits"] == 1 and result["n_outputs"] == 1 and result["seconds"] > 0
    # the same as sampling the folder's sample 1 without and with the (local) edits, at the session's settings
    sampler, spec = model_session.sampler, RoiEditSpec.from_dict(DRAWN)
    assert model_session.settings == SamplingSettings()
    outputs = sampler.sample_edited(model_session.root, spec, SamplingSettings(), samples=[1])
    for name, sinograms in zip(("before", "after"), outputs):
        np.testing.assert_allclose(result[f"{name}_sinogram"], sinograms[0], rtol=1e-6, atol=1e-5)
        np.testing.assert_allclose(result[f"{name}_image"], sampler.reconstruct(sinograms, "osem", 8, 4)[0],
                                   rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(result["sinogram_change"], result["after_sinogram"] - result["before_sinogram"],
                               atol=1e-5)
    assert np.abs(result["sinogram_change"]).max() > 0.0  # the edit reaches the model
    again = client.post("/api/sample/1/apply", json={"spec": {"edits": []}}).get_json()
    np.testing.assert_array_equal(np.array(again["after_sinogram"]), result["before_sinogram"])
    assert np.abs(np.array(again["sinogram_change"])).max() == 0.0


def test_apply_refuses_bad_requests(client, model_session: ViewerSession) -> None:
    answer = client.post("/api/sample/1/apply", json={"spec": SPEC})
    assert answer.status_code == 409 and "--checkpoint" in answer.get_json()["error"]  # no model loaded
    with_model = create_app(model_session, port=TEST_PORT).test_client()
    for body, status, words in (({"spec": {"edits": [{"op": "add", "region": "nowhere"}]}}, 400, "unknown region"),
                                ({"slice": 0}, 400, "JSON object"), ({"spec": DRAWN, "slice": 3}, 400, "slice"),
                                ({"spec": {"edits": [{"op": "paint", "region": "x"}]}}, 400, "malformed")):
        answer = with_model.post("/api/sample/1/apply", json=body)
        assert answer.status_code == status and words in answer.get_json()["error"], answer.get_json()
    assert with_model.post("/api/sample/5/apply", json={"spec": DRAWN}).status_code == 400
    answer = with_model.post("/api/sample/1/apply", json={"spec": DRAWN}, headers={"Origin": "http://attacker.example"})
    assert answer.status_code == 403 and "origin" in answer.get_json()["error"]


def test_one_apply_at_a_time_while_other_requests_are_served(model_session: ViewerSession, monkeypatch) -> None:
    import tasks.viewer.session as module

    monkeypatch.setattr(module, "APPLY_WAIT_S", 0.2)
    client = create_app(model_session, port=TEST_PORT).test_client()
    with model_session._model_lock:  # another apply is sampling
        assert client.get("/api/sample/0/arrays").status_code == 200
        assert client.post("/api/sample/0/attention", json={"spec": DRAWN}).status_code == 200
        answer = client.post("/api/sample/0/apply", json={"spec": DRAWN})
        assert answer.status_code == 503 and "busy" in answer.get_json()["error"]
    assert client.post("/api/sample/0/apply", json={"spec": DRAWN}).status_code == 200


def test_a_model_needs_a_dataset_folder(model_folder) -> None:
    from tasks.checkpoint_sampler import CheckpointSampler

    folder, run = model_folder
    sample_file = next((folder / "samples").glob("*.npz"))
    with pytest.raises(ViewerError, match="dataset folder"):
        ViewerSession(sample_file, sampler=CheckpointSampler(run, "cpu"))


# --- hostile input (issue 32): other web pages, hostile data and careless requests ---------------------------

PAGE_FILES = pathlib.Path(__file__).resolve().parents[3] / "tasks" / "viewer"
INJECTION = '<img src=x onerror="fetch(\'/api/specs/x\',{method:\'PUT\',body:\'{}\'})">'


def _saved_specs(dataset: pathlib.Path) -> dict[str, bytes]:
    folder = dataset / "roi_edits"
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())} if folder.is_dir() else {}


def test_the_page_has_no_inline_script_and_a_strict_csp(client) -> None:
    page = client.get("/")
    policy = page.headers["Content-Security-Policy"]
    directives = dict(item.strip().split(" ", 1) for item in policy.split(";") if item.strip())
    assert directives["script-src"] == "'self'" and "unsafe" not in policy
    assert directives["default-src"] == "'none'" and directives["frame-ancestors"] == "'none'"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    html = page.data.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)  # every script comes from a file
    assert not re.search(r"\son[a-z]+=", html) and "style=" not in html  # no inline handlers or styles
    script = client.get("/page.js")
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
    for name in ("page.html", "page.js"):
        text = (PAGE_FILES / name).read_text()
        assert not re.search(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write", text), name
    assert client.get("/page.css").status_code == 200


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:80", "localhost:8765", "127.0.0.2:80",
                                  "localhost.attacker.example"])
def test_requests_for_other_host_names_are_refused(client, dataset: pathlib.Path, host: str) -> None:
    """DNS rebinding: a page of attacker.example whose name now points here sends its own Host."""
    before = _saved_specs(dataset)
    for response in (client.get("/api/sample/0", headers={"Host": host}),
                     client.put("/api/specs/rebound", json=SPEC, headers={"Host": host})):
        assert response.status_code in (400, 403) and "host" in response.get_json()["error"].lower()
    assert _saved_specs(dataset) == before
    for good in ("localhost", "localhost:80", "127.0.0.1", "127.0.0.1:80"):
        assert client.get("/api/sample/0", headers={"Host": good}).status_code == 200


def test_the_allowed_hosts_follow_the_bound_address_and_port(dataset: pathlib.Path) -> None:
    client = create_app(ViewerSession(dataset), host="::1", port=8800).test_client()
    for good in ("[::1]:8800", "localhost:8800", "127.0.0.1:8800"):
        assert client.get("/api/specs", headers={"Host": good}).status_code == 200, good
    for bad in ("localhost", "[::1]:8801", "localhost:80"):
        assert client.get("/api/specs", headers={"Host": bad}).status_code in (400, 403), bad


@pytest.mark.parametrize("headers", [{"Origin": "http://attacker.example"}, {"Origin": "null"},
                                     {"Origin": "http://localhost:8080"}, {"Origin": "https://localhost"},
                                     {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                                     {"Origin": "http://localhost", "Sec-Fetch-Site": "cross-site"}])
def test_state_changing_requests_from_other_origins_are_refused(client, dataset: pathlib.Path, headers) -> None:
    assert client.put("/api/specs/victim", json={"edits": []}).status_code == 200
    before = _saved_specs(dataset)
    for response in (client.put("/api/specs/victim", json=SPEC, headers=headers),
                     client.put("/api/specs/other", json=SPEC, headers=headers),
                     client.post("/api/sample/1/attention", json={"spec": SPEC}, headers=headers)):
        assert response.status_code == 403 and "origin" in response.get_json()["error"].lower()
    assert _saved_specs(dataset) == before
    same = {"Origin": "http://localhost", "Sec-Fetch-Site": "same-origin"}
    assert client.put("/api/specs/victim", json={"edits": []}, headers=same).status_code == 200


def test_large_bodies_are_refused_before_parsing(client, dataset: pathlib.Path) -> None:
    before = _saved_specs(dataset)
    body = b'{"edits": [], "pad": "' + b"x" * (2 << 20) + b'"}'
    response = client.put("/api/specs/big", data=body, content_type="application/json")
    assert response.status_code == 413 and "too large" in response.get_json()["error"]
    assert _saved_specs(dataset) == before


@pytest.mark.parametrize("body", [b"[" * 400_000, b'{"edits": ' + b"[" * 200 + b"]" * 200 + b"}",
                                  b'{"spec": {"edits": []}, "slice": ' + b'{"a": ' * 100 + b"0" + b"}" * 101])
def test_deeply_nested_json_is_a_clear_400(client, dataset: pathlib.Path, body: bytes) -> None:
    before = _saved_specs(dataset)
    for response in (client.put("/api/specs/deep", data=body, content_type="application/json"),
                     client.post("/api/sample/0/attention", data=body, content_type="application/json")):
        assert response.status_code == 400 and "nested" in response.get_json()["error"]
    assert _saved_specs(dataset) == before


def test_deeply_nested_spec_files_are_refused(dataset: pathlib.Path, tmp_path: pathlib.Path, capsys) -> None:
    from tasks.viewer.session import parse_spec

    with pytest.raises(ViewerError, match="nested"):
        parse_spec(b"[" * 400_000)
    (tmp_path / "deep.json").write_bytes(b'{"edits": ' + b"[" * 100_000)
    assert allpet(["attention", str(dataset), "--spec", str(tmp_path / "deep.json"),
                   "--out", str(tmp_path / "a.npz")]) == 2
    err = capsys.readouterr().err
    assert "nested" in err and err.count("\n") == 1 and not (tmp_path / "a.npz").exists()


@pytest.mark.parametrize("name", ["x%0A", "x%0D", "x%00", "%C2%B2", "x.json", "x%2F"])
def test_spec_names_are_matched_to_the_end(client, dataset: pathlib.Path, name: str) -> None:
    before = _saved_specs(dataset)
    response = client.put(f"/api/specs/{name}", json=SPEC)
    assert response.status_code in (400, 404) and response.is_json
    assert _saved_specs(dataset) == before
    assert client.get(f"/api/specs/{name}").status_code in (400, 404)


@pytest.mark.parametrize("url", ["/api/sample/%C2%B2", "/api/sample/%C2%B2/arrays", "/api/sample/1e3",
                                 "/api/sample/99999999999999999999999", "/api/sample/0/arrays?slice=%C2%B2",
                                 "/api/sample/0/arrays?slice=99999999999999999999999", "/files/%00",
                                 "/files/a%00b", "/files/" + "a/" * 3000, "/api/specs/" + "a" * 5000])
def test_odd_urls_get_json_4xx_answers(client, url: str) -> None:
    response = client.get(url)
    assert 400 <= response.status_code < 500 and response.is_json and response.get_json()["error"]


def test_every_error_is_a_json_answer(client) -> None:
    for response in (client.delete("/api/specs/x"), client.post("/"), client.get("/no/such/page"),
                     client.put("/api/specs/x", data=b"\xff\xfe", content_type="application/json"),
                     client.put("/api/specs/x", data=b'{"edits": [NaN]}', content_type="application/json")):
        assert 400 <= response.status_code < 500 and response.is_json and response.get_json()["error"]


def test_a_read_only_folder_gives_a_json_error(dataset: pathlib.Path, read_only) -> None:
    client = create_app(ViewerSession(dataset), port=TEST_PORT).test_client()
    (dataset / "roi_edits").mkdir(exist_ok=True)
    before = _saved_specs(dataset)
    read_only(dataset / "roi_edits")
    response = client.put("/api/specs/locked", json=SPEC)
    assert 400 <= response.status_code < 600 and response.is_json
    message = response.get_json()["error"]
    assert "roi_edits/locked.json" in message and ".tmp" not in message
    assert _saved_specs(dataset) == before


def test_region_names_from_data_are_sent_as_data(client, dataset: pathlib.Path) -> None:
    """A hostile region name in a saved spec comes back as JSON text (the page shows it with textContent)."""
    spec = {"edits": [{"op": "add", "region": INJECTION,
                       "drawn": {"shape": "polygon", "vertices_mm": [[-20.0, -20.0], [20.0, -20.0], [0.0, 25.0]]}}]}
    assert client.put("/api/specs/hostile", json=spec).status_code == 200
    loaded = client.get("/api/specs/hostile")
    assert loaded.headers["Content-Type"] == "application/json" and loaded.get_json()["spec"]["edits"][0]["region"] \
        == INJECTION


@pytest.mark.parametrize("port", ["99999", "0", "-1", "65536", "http"])
def test_view_refuses_a_port_out_of_range_before_binding(dataset: pathlib.Path, capsys, port: str) -> None:
    with pytest.raises(SystemExit) as stopped:
        allpet(["view", str(dataset), "--port", port])
    assert stopped.value.code == 2 and "1..65535" in capsys.readouterr().err
