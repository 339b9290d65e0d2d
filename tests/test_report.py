"""soccerlab report: plots, tables and one self-contained HTML file, checked in headless Chromium."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import pendulum_config, write_config

# injected into a copy of report.html: checks in the browser that every image decoded and is not
# blank, and writes the result into the DOM, which chromium --dump-dom prints
CHECK = """<script>
window.addEventListener('load', () => {
  const out = [...document.images].map(img => {
    const r = {src: img.src.slice(0, 30), complete: img.complete, width: img.naturalWidth,
               height: img.naturalHeight, ink: 0};
    if (img.complete && img.naturalWidth > 0) {
      const c = document.createElement('canvas');
      c.width = img.naturalWidth; c.height = img.naturalHeight;
      const g = c.getContext('2d'); g.drawImage(img, 0, 0);
      const d = g.getImageData(0, 0, c.width, c.height).data;
      let ink = 0, colour = 0;
      for (let i = 0; i < d.length; i += 4) {
        if (d[i] < 200 || d[i+1] < 200 || d[i+2] < 200) ink++;
        if (Math.max(d[i], d[i+1], d[i+2]) - Math.min(d[i], d[i+1], d[i+2]) > 60) colour++;
      }
      r.ink = ink / (c.width * c.height); r.colour = colour / (c.width * c.height);
    }
    return r;
  });
  const pre = document.createElement('pre'); pre.id = 'soccerlab-check';
  pre.textContent = JSON.stringify(out); document.body.appendChild(pre);
});
</script>"""


@pytest.fixture(scope="module")
def targets(tmp_path_factory):
    """A seed group of two runs (with a video) and a study of two trials."""
    from soccerlab.cli import main

    tmp = tmp_path_factory.mktemp("report")
    out = tmp / "runs"
    cfg = pendulum_config(out, video={"every": 512, "length": 8, "width": 64, "height": 64})
    assert main(["train", str(write_config(tmp / "g.yaml", cfg)), "--seeds", "0,1",
                 "--parallel", "2"]) == 0
    [group] = list((out / "Pendulum-v1" / "ppo").glob("t-seeds-*"))
    cfg = pendulum_config(out)
    cfg["sweep"] = {"params": {"algo.params.learning_rate":
                               {"type": "float", "low": 1e-4, "high": 1e-2, "log": True}}}
    assert main(["sweep", str(write_config(tmp / "s.yaml", cfg)), "--trials", "2"]) == 0
    return group, out / "sweeps" / "t", tmp


def ink(path: Path) -> float:
    """Share of pixels that are not near-white (text, axes, data)."""
    img = np.asarray(Image.open(path).convert("RGB"))
    return float((img.min(axis=2) < 200).mean())


def colour(path: Path) -> float:
    """Share of coloured pixels: the data (curves, bands, bars); axes and text are grey."""
    img = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return float(((img.max(axis=2) - img.min(axis=2)) > 60).mean())


def test_report_of_a_group_a_run_and_a_study(targets, cli):
    group, study, tmp = targets
    run = json.loads((group / "group.json").read_text())["runs"]["0"]
    out = tmp / "report"
    res = cli("report", group, run, study, "--out", out)
    assert res.code == 0, res.err
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert {"evaluation.png", "training_episodes.png", "losses.png", "throughput.png",
            "study_t.png"} <= set(pngs)
    for png in out.glob("*.png"):
        with Image.open(png) as img:
            img.verify()  # decodes
        assert ink(png) > 0.005 and colour(png) > 0.0003, png  # axes and data are drawn
    md = (out / "report.md").read_text()
    assert "| t-seeds-" in md and "seed group" in md and "(CI, n=2)" in md
    assert "best trials" in md and "algo.params.learning_rate" in md
    assert all(f"]({p})" in md for p in pngs)
    page = (out / "report.html").read_text()
    sources = re.findall(r"src='([^']*)'", page)
    assert sources and all(s.startswith("data:") for s in sources)  # self-contained
    assert sum(s.startswith("data:video/mp4;base64,") for s in sources) == 2  # each run's video
    assert sum(s.startswith("data:image/png;base64,") for s in sources) == len(pngs)


def test_bad_report_targets_are_one_line_exit_2(tmp_path, cli):
    for target, fragment in [(tmp_path / "nope", "not found"), (tmp_path, "is not a run")]:
        res = cli("report", target)
        assert res.code == 2 and len(res.err.strip().splitlines()) == 1 and fragment in res.err


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail("chromium is not installed: run `make install` (it installs chromium)")
    pytest.skip("chromium not found and cannot install it here (not root or no apt-get)")


def test_report_html_in_headless_chromium(targets, cli):
    browser = _chromium()
    group, study, tmp = targets
    out = tmp / "report-browser"
    assert cli("report", group, study, "--out", out).code == 0
    page = (out / "report.html").read_text()
    checked = out / "checked.html"
    checked.write_text(page.replace("</body>", CHECK + "</body>"))
    flags = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             "--window-size=1400,2400", f"--user-data-dir={tmp / 'chromium-profile'}"]
    dom = subprocess.run([*flags, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
                         capture_output=True, text=True, timeout=120).stdout
    found = re.search(r'<pre id="soccerlab-check">(.*?)</pre>', dom, re.S)
    assert found, dom[-2000:]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == page.count("<img ")
    for img in images:
        assert img["complete"] and img["width"] > 100 and img["height"] > 100, img  # decoded
        assert img["ink"] > 0.005 and img["colour"] > 0.0003, img  # axes and data, not blank
    shot = out / "screenshot.png"
    subprocess.run([*flags, f"--screenshot={shot}", (out / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    with Image.open(shot) as img:
        assert img.size == (1400, 2400)
    assert ink(shot) > 0.01 and colour(shot) > 0.0005  # text, tables and plotted data
