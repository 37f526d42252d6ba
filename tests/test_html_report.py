"""``report.html`` from ``reproduce``: one self-contained file (figures, plots and audio as data
URIs, no network), checked by parsing it and by opening it in a real headless Chromium through
the DevTools protocol: no console error, every image and audio element loads, and a screenshot
that is not blank."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
import subprocess
import time
import urllib.request
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from test_figures import tones

from audiolens.study.reproduce import reproduce

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--mute-audio"]


@pytest.fixture(scope="module")
def done(tiny_model, tmp_path_factory):
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path_factory.mktemp("report")
        return reproduce(tiny_model, [tones("gender", 6), tones("language", 8)], out, batch_size=8, n_probe=3,
                         scales=(0.0, 1.0), progress=False, echo=None)
    finally:
        torch.set_num_threads(n)


class Elements(HTMLParser):
    """Every tag's attributes, by tag name."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: dict[str, list[dict[str, str]]] = {}

    def handle_starttag(self, tag, attrs):
        self.tags.setdefault(tag, []).append(dict(attrs))


def decoded(uri: str, mime: str) -> bytes:
    prefix = f"data:{mime};base64,"
    assert uri.startswith(prefix), uri[:40]
    return base64.b64decode(uri[len(prefix):])


def test_report_is_one_self_contained_file(done):
    import matplotlib.image
    import soundfile as sf

    path = done.report
    assert path == done.study.out / "report.html"
    page = path.read_text()
    assert not re.search(r"(src|href)=\"(https?:)?//", page)  # nothing fetched from elsewhere
    assert "<script" not in page
    parser = Elements()
    parser.feed(page)
    images = [a["src"] for a in parser.tags["img"]]
    # Figs. 2-5 exactly as written to figures/, embedded.
    for n in (2, 3, 4, 5):
        assert data_uri_of(done.study.out / "figures" / f"fig{n}.png") in images
    # The drill-down: per attribute, each wrong answer of the last prompt with its audio, its
    # per-layer curve and its token-lens heatmap.
    wrong = {a: done.study.result(a, "P3") for a in ("gender", "language")}
    n_wrong = sum(int((~r.correct).sum()) for r in wrong.values())
    assert n_wrong > 0
    audios = [a["src"] for a in parser.tags.get("audio", [])]
    assert len(audios) == n_wrong and len(images) == 4 + 2 * n_wrong
    samples = {s.id: s for ds in done.study.datasets for s in ds.samples}
    for res in wrong.values():
        for r in np.flatnonzero(~res.correct):
            clip_id = res.ids[r]
            assert f"<summary>{clip_id}: answered {res.predictions('last')[r]}, truth {res.labels[int(res.targets[r])]}" in page
    for uri in audios:
        wave, rate = sf.read(io.BytesIO(decoded(uri, "audio/wav")))
        assert rate == 16000 and wave.ndim == 1
        assert any(np.allclose(wave, s.load(16000), atol=1 / 32767) for s in samples.values() if len(s.load(16000)) == len(wave))
    for uri in images:
        assert matplotlib.image.imread(io.BytesIO(decoded(uri, "image/png")), format="png").shape[0] > 50
    # The tables as on disk.
    t2 = done.study.out / "tables" / "table2.csv"
    assert "Table II" in page and t2.read_text().splitlines()[1].split(",")[1] in page


def data_uri_of(path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# ----------------------------------------------------------------------------- headless browser
def chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)


class DevTools:
    """A minimal Chrome DevTools protocol client over one page's websocket."""

    def __init__(self, url: str) -> None:
        import websocket  # websocket-client

        self.ws = websocket.create_connection(url, timeout=60)
        self.next_id = 0
        self.events: list[dict] = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self.events.append(msg)

    def wait_for(self, method: str, timeout: float = 60.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(e.get("method") == method for e in self.events):
                return next(e for e in self.events if e.get("method") == method)
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)


@pytest.fixture
def browser(tmp_path):
    exe = chromium()
    if exe is None:
        pytest.skip("chromium is not installed (apt-get install chromium; scripts/setup_venv.sh does)")
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                             "--remote-debugging-port=0", "--window-size=1200,1600", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        for line in proc.stderr:  # "DevTools listening on ws://127.0.0.1:PORT/devtools/browser/..."
            match = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if match:
                port = int(match.group(1))
                break
        assert port, "chromium did not start its DevTools server"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            (page,) = [t for t in json.load(r) if t["type"] == "page"]
        client = DevTools(page["webSocketDebuggerUrl"])
        yield client
        client.ws.close()
    finally:
        proc.terminate()
        proc.wait(timeout=30)


CHECK_ELEMENTS = """(async () => {
  const images = [...document.images].map(i => i.complete && i.naturalWidth > 0);
  const audios = await Promise.all([...document.querySelectorAll('audio')].map(a => new Promise(done => {
    const timer = setTimeout(() => done('timeout'), 20000);
    const ok = () => { clearTimeout(timer); done(a.duration > 0 ? 'ok' : 'no duration'); };
    if (a.readyState >= 1) return ok();
    a.addEventListener('loadedmetadata', ok);
    a.addEventListener('error', () => { clearTimeout(timer); done('error ' + (a.error && a.error.code)); });
    a.load();
  })));
  return JSON.stringify({images, audios});
})()"""


def test_report_opens_in_headless_chromium(done, browser):
    import matplotlib.image

    for domain in ("Runtime", "Log", "Page"):
        browser.call(f"{domain}.enable")
    browser.call("Page.navigate", url=done.report.resolve().as_uri())
    browser.wait_for("Page.loadEventFired")
    found = json.loads(browser.call("Runtime.evaluate", expression=CHECK_ELEMENTS, awaitPromise=True,
                                    returnByValue=True)["result"]["value"])
    assert found["images"] and all(found["images"]), found["images"]
    assert found["audios"] and set(found["audios"]) == {"ok"}, found["audios"]
    shot = base64.b64decode(browser.call("Page.captureScreenshot", format="png")["data"])
    pixels = matplotlib.image.imread(io.BytesIO(shot), format="png")[..., :3]
    assert pixels.shape[0] >= 800 and pixels.std() > 0.05  # text and figures, not a blank page
    errors = [e for e in browser.events
              if (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors


def test_report_without_the_model_keeps_the_records_part(done, tmp_path):
    """A study reloaded from disk (no model, no clips) still writes tables, figures and each
    wrong answer's per-layer curve."""
    from audiolens.study.html_report import write_html_report
    from audiolens.study.runner import Study

    loaded = Study.load(done.study.out)
    path = write_html_report(loaded, path=tmp_path / "again.html")
    parser = Elements()
    parser.feed(path.read_text())
    n_wrong = sum(int((~done.study.result(a, "P3").correct).sum()) for a in ("gender", "language"))
    assert "audio" not in parser.tags and len(parser.tags["img"]) == 4 + n_wrong
