"""The ROI editor's web server (Flask): one page and a small JSON API over a :class:`ViewerSession`.

Routes (all JSON unless said):

- ``GET /`` the page (HTML); ``GET /api/sample/<i>`` a sample's summary;
- ``GET /api/sample/<i>/arrays?slice=k`` the slice's reconstruction, label map and sinograms (and model outputs);
- ``POST /api/sample/<i>/attention`` ``{"spec": SPEC, "slice": k}``: image and sinogram attention after the edits;
- ``GET /api/specs``, ``GET /api/specs/<name>``, ``PUT /api/specs/<name>`` list, load and save edit specs;
- ``GET /files/<path>`` any file under the viewer's folder (nothing outside it).

Bad input (unknown sample, malformed spec, unknown region, bad name, paths
outside the folder) answers 400 or 404 with ``{"error": message}`` and changes nothing.
"""

from __future__ import annotations

import ipaddress
import time
from importlib import resources
from typing import Any

import numpy as np

from .session import ViewerError, ViewerSession, spec_from_request

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _plane(array: np.ndarray, axes: list[str], index: int, n_slices: int) -> np.ndarray:
    """A 2D ``(view, radial)`` sinogram of the plane matching image slice ``index`` (3D), or the sinogram itself."""
    if array.ndim == 2:
        return array
    order = [axes.index(name) for name in ("plane", "view", "radial")]
    stacked = np.transpose(array, order)
    plane = min(index * stacked.shape[0] // max(n_slices, 1), stacked.shape[0] - 1)
    return stacked[plane]


def _slice(image: np.ndarray, index: int) -> np.ndarray:
    return image if image.ndim == 2 else image[min(index, image.shape[0] - 1)]


def _json_array(array: np.ndarray) -> list:
    return np.round(np.asarray(array, dtype=np.float64), 6).tolist()


def create_app(session: ViewerSession) -> Any:
    """The Flask app serving ``session`` (import Flask only here: ``pip install allpet[view]``)."""
    from flask import Flask, jsonify, request, send_from_directory

    app = Flask("allpet-view")
    app.json.sort_keys = False
    page = resources.files(__package__).joinpath("page.html").read_text(encoding="utf-8")

    @app.errorhandler(ViewerError)
    def bad_input(error: ViewerError) -> Any:
        return jsonify(error=str(error)), 400

    @app.errorhandler(404)
    def not_found(error: Any) -> Any:
        return jsonify(error="not found"), 404

    def sample_index(index: str) -> int:
        if not index.isdigit():
            raise ViewerError(f"sample index must be a non-negative integer, got {index!r}")
        return int(index)

    def slice_index(value: Any) -> int:
        try:
            index = int(value)
        except (TypeError, ValueError):
            raise ViewerError(f"slice must be an integer, got {value!r}") from None
        if index < 0:
            raise ViewerError(f"slice must be non-negative, got {index}")
        return index

    @app.get("/")
    def index_page() -> Any:
        return page, 200, {"Content-Type": "text/html; charset=utf-8"}

    @app.get("/api/sample/<index>")
    def describe(index: str) -> Any:
        return jsonify(session.describe(sample_index(index)))

    @app.get("/api/sample/<index>/arrays")
    def arrays(index: str) -> Any:
        i = sample_index(index)
        k = slice_index(request.args.get("slice", 0))
        sample = session.sample(i)
        axes = sample.metadata["projector"]["sinogram_axes"]
        n_slices = sample.labels.shape[0] if sample.labels.ndim == 3 else 1
        out = {"image": _json_array(_slice(session.reconstruction(i), k)),
               "labels": _slice(sample.labels, k).astype(int).tolist(),
               "sinogram": _json_array(_plane(sample.input, axes, k, n_slices))}
        if session.outputs is not None:
            target = sample.target if sample.target.shape == sample.input.shape else sample.target.sum(axis=0)
            output = session.outputs.sinograms[i]
            out.update(target=_json_array(_plane(target, axes, k, n_slices)),
                       output=_json_array(_plane(output, axes, k, n_slices)),
                       error=_json_array(_plane(output - target, axes, k, n_slices)))
            if session.outputs.images is not None:
                truth = sample.target_image if sample.target_image.shape == sample.labels.shape \
                    else sample.target_image.sum(axis=0)
                image = session.outputs.images[i]
                out.update(output_image=_json_array(_slice(image, k)),
                           target_image=_json_array(_slice(truth, k)),
                           image_error=_json_array(_slice(image - truth, k)))
        return jsonify(out)

    @app.post("/api/sample/<index>/attention")
    def attention(index: str) -> Any:
        i = sample_index(index)
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or "spec" not in body:
            raise ViewerError("the request must be a JSON object {\"spec\": {...}, \"slice\": k}")
        spec = spec_from_request(body["spec"])
        k = slice_index(body.get("slice", 0))
        start = time.perf_counter()
        maps = session.attention(i, spec)
        elapsed = time.perf_counter() - start
        sample = session.sample(i)
        axes = sample.metadata["projector"]["sinogram_axes"]
        n_slices = sample.labels.shape[0] if sample.labels.ndim == 3 else 1
        return jsonify(image_attention=_json_array(_slice(maps.image, k)),
                       sinogram_attention=_json_array(_plane(maps.sinogram, axes, k, n_slices)),
                       n_edits=len(spec.edits), seconds=elapsed)

    @app.get("/api/specs")
    def specs() -> Any:
        return jsonify(specs=session.spec_names())

    @app.get("/api/specs/<name>")
    def load_spec(name: str) -> Any:
        return jsonify(spec=session.load_spec(name).to_dict())

    @app.put("/api/specs/<name>")
    def save_spec(name: str) -> Any:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ViewerError("the request must be a JSON object holding the spec")
        spec = spec_from_request(body)
        path = session.save_spec(name, spec)
        return jsonify(saved=str(path.relative_to(session.root)), specs=session.spec_names())

    @app.get("/files/<path:relative>")
    def files(relative: str) -> Any:
        session.inside(relative)  # refuses traversal with a clear message (400)
        return send_from_directory(session.root, relative)

    return app
