"""Render an executed notebook the way a person would see it: HTML with its widget state, the widget
JavaScript from the npm registry (``@jupyter-widgets/html-manager``, installed into a cache dir, never a
CDN), and a headless Chromium (Debian's package) screenshot and DOM dump.

``ensure_render_tools()`` installs what is missing (``apt-get install chromium``/``npm``, ``npm install``)
and raises ``RenderToolsMissing`` if it cannot: the rendered test then FAILS, it never skips. The project's
``inv test`` calls it before the suite: ``from tests.notebooks.render import ensure_render_tools``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "artifacts"
#: The html-manager release that speaks the widget protocol of ipywidgets 8 (state version_major 2).
HTML_MANAGER = "@jupyter-widgets/html-manager@1.0.15"
NPM_CACHE = Path(os.environ.get("VMOPS_RENDER_CACHE", str(ARTIFACTS / "render-cache")))
CHROMIUM_NAMES = ("chromium", "chromium-browser")
#: Chromium flags: headless, no sandbox (root), no GPU, nothing that phones home; every host name
#: resolves to nothing, so the page can load only local files.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", "--hide-scrollbars", "--host-resolver-rules=MAP * ~NOTFOUND",
)


class RenderToolsMissing(RuntimeError):
    """Chromium or the widget JavaScript is not installed and could not be installed."""


@dataclass(frozen=True)
class RenderTools:
    chromium: Path
    embed_js: Path  # html-manager's self-contained embed.js (renders every widget view on the page)


def _run(cmd: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})


def _apt_install(*packages: str) -> None:
    if os.geteuid() != 0:
        raise RenderToolsMissing(f"{', '.join(packages)} missing and not root: run `apt-get install -y {' '.join(packages)}`")
    upd = _run(["apt-get", "update"], 600)
    inst = _run(["apt-get", "install", "-y", *packages], 900)
    if inst.returncode != 0:
        raise RenderToolsMissing(f"apt-get install {' '.join(packages)} failed: {(upd.stderr + inst.stderr)[-800:]}")


def find_chromium() -> Path | None:
    for name in CHROMIUM_NAMES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def ensure_chromium() -> Path:
    path = find_chromium()
    if path is None:
        _apt_install("chromium")
        path = find_chromium()
    if path is None:
        raise RenderToolsMissing("chromium is not installed and `apt-get install chromium` did not provide it")
    return path


def ensure_widget_js(cache: Path = NPM_CACHE) -> Path:
    embed = cache / "node_modules" / "@jupyter-widgets" / "html-manager" / "dist" / "embed.js"
    if embed.is_file():
        return embed
    if shutil.which("npm") is None:
        _apt_install("npm")
    cache.mkdir(parents=True, exist_ok=True)
    p = _run(["npm", "install", "--no-audit", "--no-fund", "--ignore-scripts", "--prefix", str(cache), HTML_MANAGER], 900)
    if p.returncode != 0 or not embed.is_file():
        raise RenderToolsMissing(f"npm install {HTML_MANAGER} failed: {(p.stdout + p.stderr)[-800:]}")
    return embed


def ensure_render_tools() -> RenderTools:
    """Make sure Chromium and the widget JavaScript are present (installing them if not)."""
    return RenderTools(chromium=ensure_chromium(), embed_js=ensure_widget_js())


# ---- HTML --------------------------------------------------------------------------------------------
def export_html(nb: Any, out_dir: Path, tools: RenderTools, name: str = "dashboard") -> Path:
    """Write ``<out_dir>/<name>.html`` (lab template, widget state from ``nb.metadata.widgets``) next to a
    copy of the widget JavaScript; every script the page loads is a local file."""
    from nbconvert import HTMLExporter

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(tools.embed_js, out_dir / "embed.js")
    for font in tools.embed_js.parent.iterdir():  # the icon font, found next to embed.js at run time
        if font.suffix in (".woff2", ".woff", ".ttf", ".eot", ".svg"):
            shutil.copy2(font, out_dir / font.name)
    (out_dir / "noop.js").write_text("/* stands in for CDN scripts this page does not need */\n")
    exporter = HTMLExporter(template_name="lab")
    exporter.widget_renderer_url = "embed.js"
    exporter.require_js_url = "noop.js"
    exporter.mathjax_url = "noop.js"
    exporter.mermaid_js_url = "noop.js"
    if hasattr(exporter, "mermaid_layout_elk_js_url"):
        exporter.mermaid_layout_elk_js_url = "noop.js"
    body, _ = exporter.from_notebook_node(nb)
    path = out_dir / f"{name}.html"
    path.write_text(body)
    return path


# ---- Chromium ----------------------------------------------------------------------------------------
def _chromium(tools: RenderTools, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    profile = tempfile.mkdtemp(prefix="vmops-chromium-")
    try:
        return _run([str(tools.chromium), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], timeout)
    finally:
        shutil.rmtree(profile, ignore_errors=True)


def dump_dom(tools: RenderTools, html_path: Path, budget_ms: int = 8000) -> str:
    """The page's DOM after its JavaScript ran (virtual time budget lets the widget manager render)."""
    p = _chromium(tools, f"--virtual-time-budget={budget_ms}", "--dump-dom", html_path.resolve().as_uri())
    if p.returncode != 0:
        raise RuntimeError(f"chromium --dump-dom failed ({p.returncode}): {p.stderr[-800:]}")
    return p.stdout


def screenshot(tools: RenderTools, html_path: Path, png: Path, size: tuple[int, int] = (1280, 1100),
               budget_ms: int = 8000) -> Path:
    png.parent.mkdir(parents=True, exist_ok=True)
    if png.exists():
        png.unlink()
    p = _chromium(tools, f"--virtual-time-budget={budget_ms}", f"--window-size={size[0]},{size[1]}",
                  f"--screenshot={png.resolve()}", html_path.resolve().as_uri())
    if p.returncode != 0 or not png.is_file():
        raise RuntimeError(f"chromium --screenshot failed ({p.returncode}): {p.stderr[-800:]}")
    return png


def image_stats(png: Path) -> tuple[tuple[int, int], int, float]:
    """``(size, distinct colours, fraction of non-white pixels)`` of a PNG."""
    from PIL import Image

    with Image.open(png) as img:
        rgb = img.convert("RGB")
        small = rgb.resize((rgb.width // 2, rgb.height // 2))
        colours = small.getcolors(maxcolors=1 << 20) or []
        pixels = small.width * small.height
        white = sum(n for n, c in colours if min(c) >= 250)
        return rgb.size, len(colours), 1.0 - white / pixels
