"""The ROI editor in headless Chromium (Playwright driving Debian's chromium): edit, draw, save, reproduce.

Screenshots are kept in ``test-artifacts/viewer/`` at the repository root.
"""

from __future__ import annotations

import json
import pathlib
import shutil
import threading

import numpy as np
import pytest

pytest.importorskip("flask")
sync_api = pytest.importorskip("playwright.sync_api")

from pet_projection.attention import RoiEditSpec  # noqa: E402
from pet_projection.simulation import SimulationConfig, write_dataset  # noqa: E402
from pet_projection.simulation.dataset_folder import SimulatedDataset  # noqa: E402
from tasks.viewer import ViewerSession, attention_for  # noqa: E402
from tasks.viewer.server import create_app  # noqa: E402

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Chromium on a machine with a closed network: no sandbox as root, no GPU, no background connections
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTIFACTS = pathlib.Path(__file__).resolve().parents[3] / "test-artifacts" / "viewer"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    from werkzeug.serving import make_server

    root = tmp_path_factory.mktemp("browser") / "brains"
    config = SimulationConfig(size=64, n_views=48, anatomy="brain", n_lesions=(1, 1))
    write_dataset(root, "low_dose", 2, config, seed=3, progress=False)
    server = make_server("127.0.0.1", 0, create_app(ViewerSession(root)), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    thread.join()


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

    # undo and redo the lesion's scaling
    page.locator("#regions tbody tr[data-region='lesion_hot_1'] input.value").fill("0.5")
    page.locator("#regions tbody tr[data-region='lesion_hot_1'] button.scale").click()
    _wait_message(page, "scale lesion_hot_1")
    page.click("#undo")
    _wait_message(page, "undid scale lesion_hot_1")

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
