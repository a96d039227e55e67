"""The ROI editor in headless Chromium (Playwright driving Debian's chromium): edit, draw, save, reproduce, apply the
edits to a model; hostile region names, DNS rebinding and foreign origins change nothing.

Screenshots are kept in ``test-artifacts/viewer/`` at the repository root.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import shutil
import threading
from typing import Iterator

import numpy as np
import pytest

pytest.importorskip("flask")
sync_api = pytest.importorskip("playwright.sync_api")

from pet_projection.attention import RoiEditSpec  # noqa: E402
from pet_projection.simulation import SimulationConfig, write_dataset  # noqa: E402
from pet_projection.simulation.dataset_folder import SimulatedDataset, load_sample, save_sample  # noqa: E402
from tasks.viewer import ViewerSession, attention_for  # noqa: E402
from tasks.viewer.server import allowed_hosts, create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium on a machine with a closed network: no sandbox as root, no GPU, no background connections
# (and attacker.example resolves to this machine: a DNS rebinding attack)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP attacker.example 127.0.0.1"]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[3] / "test-artifacts" / "viewer"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


@contextlib.contextmanager
def _serve(root: pathlib.Path, sampler: object = None) -> Iterator[str]:
    """The viewer of ``root`` (a dataset folder or a sample file, with a model's ``sampler``) on a free port of
    127.0.0.1; yields its address."""
    from werkzeug.serving import make_server

    app = create_app(ViewerSession(root, sampler=sampler))
    server = make_server("127.0.0.1", 0, app, threaded=True)
    app.config["ALLOWED_HOSTS"] = allowed_hosts("127.0.0.1", server.server_port)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/"
    finally:
        server.shutdown()
        thread.join()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("browser") / "brains"
    config = SimulationConfig(size=64, n_views=48, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=3, progress=False)
    with _serve(root) as url:
        yield root, url


@pytest.fixture(scope="module")
def page(served):
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS, headless=True)
        page = browser.new_page(viewport={"width": 1500, "height": 1100})
        yield page
        browser.close()


def _wait_message(page, text: str) -> str:
    page.wait_for_function("(text) => document.getElementById('message').textContent.includes(text)", arg=text,
                           timeout=30_000)
    return page.inner_text("#message")


def test_edit_draw_save_and_reproduce(served, page) -> None:
    root, url = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(url)
    page.wait_for_selector("body[data-ready='0']")
    page.fill("#sample", "1")
    page.locator("#sample").blur()  # the input's 'change': the page loads sample 1
    page.wait_for_selector("body[data-ready='1']")
    page.screenshot(path=str(ARTIFACTS / "1_loaded.png"), full_page=True)

    # re-weight a labelled region: the brainstem to 0.5
    row = page.locator("#regions tbody tr[data-region='brainstem']")
    row.locator("input.value").fill("0.5")
    row.locator("button.add").click()
    _wait_message(page, "add brainstem")
    assert page.inner_text("#regions tbody tr[data-region='brainstem'] td.weight") == "0.50"

    # draw a new region with the polygon tool
    box = page.locator("#draw").bounding_box()
    for fx, fy in ((0.3, 0.3), (0.55, 0.3), (0.45, 0.55)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.fill("#draw-name", "node_1")
    page.click("#finish-draw")
    _wait_message(page, "add node_1")
    page.screenshot(path=str(ARTIFACTS / "2_edited.png"), full_page=True)

    # undo and redo the scaling of the segmented hyper regions
    page.locator("#regions tbody tr[data-region='hyper'] input.value").fill("0.5")
    page.locator("#regions tbody tr[data-region='hyper'] button.scale").click()
    _wait_message(page, "scale hyper")
    page.click("#undo")
    _wait_message(page, "undid scale hyper")

    # a malformed spec and an unknown region name are reported and change nothing
    before = page.input_value("#spec-json")
    page.fill("#spec-json", "{not json")
    page.click("#apply-json")
    assert "malformed JSON" in _wait_message(page, "malformed")
    page.fill("#spec-json", json.dumps({"edits": [{"op": "remove", "region": "no_such_region"}]}))
    page.click("#apply-json")
    assert "unknown region 'no_such_region'" in _wait_message(page, "no_such_region")
    assert json.loads(page.input_value("#spec-json")) == json.loads(before)

    page.fill("#spec-name", "clinician_edit")
    page.click("#save")
    _wait_message(page, "saved roi_edits/clinician_edit.json")
    page.screenshot(path=str(ARTIFACTS / "3_saved.png"), full_page=True)

    # the saved spec recomputes the page's attention through the Python API
    spec = RoiEditSpec.from_json((root / "roi_edits" / "clinician_edit.json").read_text())
    assert [(edit.op, edit.region) for edit in spec.edits] == [("add", "brainstem"), ("add", "node_1")]
    assert spec.edits[1].drawn.to_dict()["shape"] == "polygon"
    sample = SimulatedDataset(root)[1]
    maps = attention_for(sample, spec)
    shown = page.evaluate("""async () => {
        const r = await fetch('/api/sample/1/attention', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({spec: JSON.parse(document.getElementById('spec-json').value), slice: 0})});
        return await r.json(); }""")
    np.testing.assert_allclose(np.array(shown["sinogram_attention"]), maps.sinogram, atol=1e-6)
    drawn = spec.edits[1].drawn.rasterize(_grid(sample))
    assert drawn.sum() > 0 and maps.image[drawn].max() == pytest.approx(1.0)

    # loading the spec back restores the edits
    page.click("#reset")
    _wait_message(page, "all edits removed")
    page.select_option("#load-select", "clinician_edit")
    page.click("#load")
    _wait_message(page, "loaded clinician_edit")
    assert json.loads(page.input_value("#spec-json")) == spec.to_dict()


def _grid(sample):
    from pet_projection.simulation.acquisition import projector_from_description, projector_grid

    return projector_grid(projector_from_description(sample.metadata["projector"]))


# --- hostile data and other web pages (issue 32) -----------------------------------------------------------------

def _script(name: str) -> str:
    """A payload that, if it ran, would overwrite the saved spec ``name`` and mark the page."""
    return (f"document.body.dataset.pwned='{name}';fetch('/api/specs/{name}',{{method:'PUT',"
            "headers:{'Content-Type':'application/json'},body:'{\"edits\":[]}'})")


IMG = f'<img src=x-from-sample onerror="{_script("pwned_by_sample")}">'
SVG = f'<svg><image href=x-from-spec onerror="{_script("pwned_by_spec")}"/></svg><b>bold</b>'


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory):
    """A sample file that names a region with an HTML payload, and a saved spec that draws another."""
    folder = tmp_path_factory.mktemp("hostile")
    write_dataset(folder / "brains", "low_dose", 1, SimulationConfig(size=32, n_views=24, anatomy="brain"), seed=1,
                  progress=False)
    sample = load_sample(folder / "brains" / "samples" / "sample_00000.npz")
    names = dict(sample.names)
    names[IMG] = names.pop("brainstem")
    root = folder / "hostile"
    root.mkdir()
    save_sample(root / "sample.npz",
                dataclasses.replace(sample, names=names, metadata={**sample.metadata, "region_names": names}))
    (root / "roi_edits").mkdir()
    spec = {"version": 1, "edits": [
        {"op": "add", "region": SVG, "weight": 1.0,
         "drawn": {"shape": "polygon", "vertices_mm": [[-40.0, -40.0], [40.0, -40.0], [0.0, 50.0]]}},
        {"op": "scale", "region": IMG, "factor": 0.5}]}
    (root / "roi_edits" / "trap.json").write_text(json.dumps(spec))
    (root / "roi_edits" / "victim.json").write_text(json.dumps({"version": 1, "edits": []}))
    with _serve(root / "sample.npz") as url:
        yield root, url


def test_hostile_region_names_are_shown_as_text(hostile, page) -> None:
    root, url = hostile
    requests: list[str] = []

    def record(request) -> None:
        requests.append(f"{request.method} {request.url}")

    page.on("request", record)
    page.goto(url)
    page.wait_for_selector("body[data-ready='0']")
    names = _region_names(page)
    assert IMG in names
    row = page.locator("#regions tbody tr").nth(names.index(IMG))
    assert row.locator("td").first.inner_text() == IMG  # the text itself, not an element made of it

    page.select_option("#load-select", "trap")
    page.click("#load")
    _wait_message(page, "loaded trap")
    names = _region_names(page)
    assert SVG in names
    assert page.locator("#regions tbody tr").nth(names.index(SVG)).locator("td").first.inner_text() == SVG
    page.wait_for_timeout(500)  # time for an image request or an onerror handler, had one been made
    assert page.locator("#regions img, #regions svg, #regions b, img, svg").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None
    assert not [r for r in requests if "x-from-" in r or r.startswith("PUT")], requests
    assert sorted(p.name for p in (root / "roi_edits").iterdir()) == ["trap.json", "victim.json"]
    page.remove_listener("request", record)


def _region_names(page) -> list[str]:
    rows = page.locator("#regions tbody tr")
    return [rows.nth(i).get_attribute("data-region") for i in range(rows.count())]


def test_other_web_pages_cannot_drive_the_viewer(hostile, page) -> None:
    root, url = hostile
    victim = (root / "roi_edits" / "victim.json").read_bytes()
    port = url.rstrip("/").rsplit(":", 1)[1]
    # DNS rebinding: attacker.example now resolves to 127.0.0.1, so its page reaches the viewer's port
    response = page.goto(f"http://attacker.example:{port}/")
    assert response.status in (400, 403) and "host" in response.json()["error"]
    shown = page.evaluate("""async () => {
        const r = await fetch('/api/specs/victim', {method: 'PUT', headers: {'Content-Type': 'application/json'},
                              body: JSON.stringify({edits: []})});
        return r.status; }""")
    assert shown in (400, 403)
    # a request from another origin with the viewer's own host name: refused before anything is read or written
    spec = {"version": 1, "edits": [{"op": "scale", "region": IMG, "factor": 0.0}]}
    for headers in ({"Origin": "http://attacker.example"}, {"Origin": "null"}):
        answer = page.request.put(f"{url}api/specs/victim", data=json.dumps(spec),
                                  headers={"Content-Type": "application/json", **headers})
        assert answer.status == 403 and "origin" in answer.json()["error"]
    assert (root / "roi_edits" / "victim.json").read_bytes() == victim
    # the page's own requests still work
    page.goto(url)
    page.wait_for_selector("body[data-ready='0']")
    page.fill("#spec-name", "victim")
    page.click("#save")
    _wait_message(page, "saved roi_edits/victim.json")


# --- the edits applied to a model (issue 34) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def served_model(tmp_path_factory: pytest.TempPathFactory):
    """A 16 x 16 brain folder served with a tiny model of its task (1 training step per stage)."""
    pytest.importorskip("torch")
    from tasks.checkpoint_sampler import CheckpointSampler
    from tasks.cli import train as train_cli

    root = tmp_path_factory.mktemp("browser_model")
    folder, run = root / "brains", root / "run"
    write_dataset(folder, "low_dose", 2, SimulationConfig(size=16, n_views=16, anatomy="brain"), seed=0,
                  progress=False)
    assert train_cli.main(["--config", "tiny", "--no-progress", f"train.out_dir={run}", "data.image_size=16",
                           "data.n_views=16", "data.n_bins=16", "data.source=folder", "data.task=paired",
                           f"data.path={folder}", "train.batch_size=2", "train.stages.autoencoder.steps=1",
                           "train.stages.diffusion.steps=1", "train.checkpoint_every=1", "train.cpu_threads=1"]) == 0
    sampler = CheckpointSampler(run, "cpu")
    with _serve(folder, sampler) as url:
        yield folder, url, sampler


def test_apply_shows_the_model_output_before_and_after_the_edits(served_model, page) -> None:
    from tasks.checkpoint_sampler import SamplingSettings

    folder, url, sampler = served_model
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.goto(url)
    page.wait_for_selector("body[data-ready='0']")
    assert page.is_visible("#apply-model") and not page.is_visible("#applied")
    box = page.locator("#draw").bounding_box()
    for fx, fy in ((0.3, 0.3), (0.7, 0.3), (0.5, 0.75)):
        page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
    page.fill("#draw-name", "node_1")
    page.click("#finish-draw")
    _wait_message(page, "add node_1")
    page.click("#apply-model")
    assert "applied 1 edits to the model" in _wait_message(page, "applied")
    assert page.is_visible("#applied")
    for canvas in ("before-sinogram", "after-sinogram", "sinogram-change", "before-image", "after-image",
                   "image-change"):
        assert page.evaluate(f"document.getElementById('{canvas}').width") == 16, canvas
    page.screenshot(path=str(ARTIFACTS / "4_applied.png"), full_page=True)
    # the page's "after" is the model's output for the page's spec
    spec = RoiEditSpec.from_json(page.input_value("#spec-json"))
    shown = page.evaluate("""async () => {
        const r = await fetch('/api/sample/0/apply', {method: 'POST', headers: {'Content-Type': 'application/json'},
            body: JSON.stringify({spec: JSON.parse(document.getElementById('spec-json').value), slice: 0})});
        return await r.json(); }""")
    expected = sampler.sample_edited(folder, spec, SamplingSettings(), samples=[0])[1][0]
    np.testing.assert_allclose(np.array(shown["after_sinogram"]), expected, rtol=1e-6, atol=1e-5)
    assert np.abs(np.array(shown["sinogram_change"])).max() > 0.0
