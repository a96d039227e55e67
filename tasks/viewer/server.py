"""The ROI editor's web server (Flask): one page and a small JSON API over a :class:`ViewerSession`.

Routes (all JSON unless said):

- ``GET /`` the page (HTML), ``GET /page.js`` its script, ``GET /page.css`` its styles;
- ``GET /api/sample/<i>`` a sample's summary;
- ``GET /api/sample/<i>/arrays?slice=k`` the slice's reconstruction, label map and sinograms (and model outputs);
- ``POST /api/sample/<i>/attention`` ``{"spec": SPEC, "slice": k}``: image and sinogram attention after the edits;
- ``POST /api/sample/<i>/apply`` ``{"spec": SPEC, "slice": k}``: with a model (``allpet view --checkpoint``), the
  sample's model output (sinogram and OSEM image) with the unedited and with the edited attention, and their
  difference (:meth:`ViewerSession.apply`; one apply at a time, other requests are served meanwhile);
- ``GET /api/specs``, ``GET /api/specs/<name>``, ``PUT /api/specs/<name>`` list, load and save edit specs;
- ``GET /files/<path>`` any file under the viewer's folder (nothing outside it).

Other web pages cannot drive it: requests must name an allowed host (:func:`allowed_hosts`: the bound
address and ``localhost`` / ``127.0.0.1``, with the port), which defeats DNS rebinding; requests that change
anything (POST, PUT, PATCH, DELETE) must come from the page's own origin (``Origin`` and, where the browser
sends it, ``Sec-Fetch-Site``); every answer carries a Content-Security-Policy that allows no inline script.
Bodies are limited to :data:`MAX_REQUEST_BYTES` and JSON to :data:`~.session.MAX_JSON_DEPTH` levels.

Every error is a JSON answer ``{"error": message}`` that changes nothing: 400 for bad input (unknown
sample, malformed spec, unknown region, bad name, paths outside the folder) and foreign hosts, 403 for
foreign origins and folders it may not write, 404, 405, 409 (apply without a model), 413 (a body over the
limit) and 503 (the model busy with another apply for too long).
"""

from __future__ import annotations

import ipaddress
import json
import re
import socket
import time
from importlib import resources
from typing import Any

import numpy as np

from pet_projection.validation import positive_int

from .session import ViewerError, ViewerSession, check_json_depth, spec_from_request

LOOPBACK_NAMES = ("localhost",)
DEFAULT_PORT = 8765
MAX_REQUEST_BYTES = 1 << 20
STATE_CHANGING = ("POST", "PUT", "PATCH", "DELETE")
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::")
ASSETS = {"/": ("page.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript; charset=utf-8"),
          "/page.css": ("page.css", "text/css; charset=utf-8")}
PAGE_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
               "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
FILES_POLICY = "default-src 'none'; sandbox; frame-ancestors 'none'"  # files under the folder never run as a page
INDEX = re.compile(r"\A[0-9]{1,9}\Z")


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (127.0.0.0/8, ::1) or ``localhost``."""
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def allowed_hosts(host: str, port: int) -> frozenset[str]:
    """``Host`` header values the server answers: the bound address, ``localhost`` and ``127.0.0.1``, with ``port``.

    A wildcard address (``0.0.0.0``, ``::``) adds the machine's host names. Port 80 also allows the names
    alone (browsers leave out the scheme's default port). IPv6 addresses are bracketed, all lower case.
    """
    port = positive_int("port", port, 1, 65535)
    names = {host.lower(), "localhost", "127.0.0.1"} - {""}
    if host in WILDCARD_ADDRESSES:
        names |= {socket.gethostname().lower(), socket.getfqdn().lower()} - {""}
    names = {f"[{name}]" if ":" in name else name for name in names}
    return frozenset({f"{name}:{port}" for name in names} | (names if port == 80 else set()))


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


def create_app(session: ViewerSession, host: str = "127.0.0.1", port: int = DEFAULT_PORT) -> Any:
    """The Flask app serving ``session`` at ``http://host:port`` (import Flask only here: ``pip install allpet[view]``).

    ``host`` and ``port`` are where it is served (see :func:`allowed_hosts`); a server that
    picks its port itself sets ``app.config["ALLOWED_HOSTS"] = allowed_hosts(host, its_port)``.
    """
    from flask import Flask, jsonify, request, send_from_directory
    from werkzeug.exceptions import HTTPException

    app = Flask("allpet-view")
    app.json.sort_keys = False
    app.config.update(MAX_CONTENT_LENGTH=MAX_REQUEST_BYTES, ALLOWED_HOSTS=allowed_hosts(host, port))
    assets = {route: (resources.files(__package__).joinpath(name).read_bytes(), kind)
              for route, (name, kind) in ASSETS.items()}

    @app.errorhandler(ViewerError)
    def bad_input(error: ViewerError) -> Any:
        return jsonify(error=str(error)), error.status

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Any:
        if error.code == 413:
            return jsonify(error=f"the request is too large (at most {MAX_REQUEST_BYTES} bytes)"), 413
        return jsonify(error=(error.description or error.name) if error.code != 404 else "not found"), error.code

    @app.errorhandler(Exception)
    def failure(error: Exception) -> Any:
        app.logger.exception("allpet view: unexpected error")
        return jsonify(error=f"internal error ({type(error).__name__}); see the server's log"), 500

    @app.before_request
    def same_origin_only() -> Any:
        hosts = app.config["ALLOWED_HOSTS"]
        host = request.headers.get("Host", "").lower()
        if host not in hosts:
            return jsonify(error=f"host {host[:100]!r} is not served here (DNS rebinding?); open the page at "
                                 f"http://{min(hosts)}/"), 400
        if request.method in STATE_CHANGING:
            origin = request.headers.get("Origin")
            site = request.headers.get("Sec-Fetch-Site")
            if (origin is not None and origin.lower() not in {f"http://{name}" for name in hosts}) \
                    or (site is not None and site != "same-origin"):
                return jsonify(error=f"requests that change data must come from the page itself (origin "
                                     f"{origin!r}, Sec-Fetch-Site {site!r})"), 403
        return None

    @app.after_request
    def security_headers(response: Any) -> Any:
        policy = FILES_POLICY if request.path.startswith("/files/") else PAGE_POLICY
        response.headers.update({"Content-Security-Policy": policy, "X-Content-Type-Options": "nosniff",
                                 "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
                                 "Cross-Origin-Resource-Policy": "same-origin", "Cache-Control": "no-store"})
        return response

    def json_body() -> Any:
        """The request's JSON (None if it is not JSON); the size is checked by Flask, the depth before parsing."""
        if not request.is_json:
            return None
        data = request.get_data(cache=False)
        check_json_depth(data)
        try:
            return json.loads(data)
        except ValueError:
            return None

    def sample_index(index: str) -> int:
        if not INDEX.match(index):
            raise ViewerError(f"sample index must be a non-negative integer, got {index[:20]!r}")
        return int(index)

    def slice_index(value: Any, sample: Any) -> int:
        if isinstance(value, str) and INDEX.match(value):
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ViewerError(f"slice must be an integer, got {str(value)[:20]!r}")
        n_slices = sample.labels.shape[0] if sample.labels.ndim == 3 else 1
        if not 0 <= value < n_slices:
            raise ViewerError(f"slice {value} does not exist (0 .. {n_slices - 1})")
        return value

    def asset(route: str) -> Any:
        data, kind = assets[route]
        return data, 200, {"Content-Type": kind}

    for route in assets:
        app.add_url_rule(route, f"asset{route}", lambda route=route: asset(route))

    @app.get("/api/sample/<index>")
    def describe(index: str) -> Any:
        return jsonify(session.describe(sample_index(index)))

    @app.get("/api/sample/<index>/arrays")
    def arrays(index: str) -> Any:
        i = sample_index(index)
        sample = session.sample(i)
        k = slice_index(request.args.get("slice", "0"), sample)
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

    def spec_request(index: str) -> tuple[int, Any, Any, int]:
        """Sample index, ROI-edit spec, sample and slice of a request ``{"spec": {...}, "slice": k}``."""
        i = sample_index(index)
        body = json_body()
        if not isinstance(body, dict) or "spec" not in body:
            raise ViewerError("the request must be a JSON object {\"spec\": {...}, \"slice\": k}")
        sample = session.sample(i)
        return i, spec_from_request(body["spec"]), sample, slice_index(body.get("slice", 0), sample)

    @app.post("/api/sample/<index>/attention")
    def attention(index: str) -> Any:
        i, spec, sample, k = spec_request(index)
        start = time.perf_counter()
        maps = session.attention(i, spec)
        elapsed = time.perf_counter() - start
        axes = sample.metadata["projector"]["sinogram_axes"]
        n_slices = sample.labels.shape[0] if sample.labels.ndim == 3 else 1
        return jsonify(image_attention=_json_array(_slice(maps.image, k)),
                       sinogram_attention=_json_array(_plane(maps.sinogram, axes, k, n_slices)),
                       n_edits=len(spec.edits), seconds=elapsed)

    @app.post("/api/sample/<index>/apply")
    def apply(index: str) -> Any:
        i, spec, sample, k = spec_request(index)
        result = session.apply(i, spec)
        before, after = result.before, result.after  # the first target's outputs (tracer separation: 2 per sample)
        return jsonify(before_sinogram=_json_array(before.sinograms[0]), after_sinogram=_json_array(after.sinograms[0]),
                       sinogram_change=_json_array(after.sinograms[0] - before.sinograms[0]),
                       before_image=_json_array(_slice(before.images[0], k)),
                       after_image=_json_array(_slice(after.images[0], k)),
                       image_change=_json_array(_slice(after.images[0] - before.images[0], k)),
                       n_outputs=len(after.sinograms), n_edits=len(spec.edits), seconds=result.seconds)

    @app.get("/api/specs")
    def specs() -> Any:
        return jsonify(specs=session.spec_names())

    @app.get("/api/specs/<name>")
    def load_spec(name: str) -> Any:
        return jsonify(spec=session.load_spec(name).to_dict())

    @app.put("/api/specs/<name>")
    def save_spec(name: str) -> Any:
        session.spec_path(name)  # a bad name is refused before the body is read
        body = json_body()
        if not isinstance(body, dict):
            raise ViewerError("the request must be a JSON object holding the spec")
        spec = spec_from_request(body)
        path = session.save_spec(name, spec)
        return jsonify(saved=str(path.relative_to(session.root)), specs=session.spec_names())

    @app.get("/files/<path:relative>")
    def files(relative: str) -> Any:
        session.inside(relative)  # refuses traversal and odd names with a clear message (400)
        return send_from_directory(session.root, relative)

    return app
