"""The cash reference's Code 128 barcode scans: zbar (apt zbar-tools), a decoder we did not
write, reads the inline SVG as Chromium draws it."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from checkout.domain.code128 import code128_svg


@pytest.mark.skipif(
    not shutil.which("zbarimg"),
    reason="needs zbarimg to decode the barcode (apt-get install zbar-tools; .ci/run does)",
)
@pytest.mark.parametrize("reference", ["98765432101234", "PJJ123C", "7501234567"])
def test_code128_svg_scans(browser: Any, tmp_path: Path, reference: str) -> None:
    """zbar, a decoder we did not write, reads the SVG as Chromium draws it."""
    html = tmp_path / "code.html"
    html.write_text(
        "<body style='margin:0;background:#fff'><div style='width:600px;padding:20px'>"
        + code128_svg(reference).replace("<svg ", "<svg style='width:560px;height:120px' ")
        + "</div></body>"
    )
    png = tmp_path / "code.png"
    page = browser.new_page(viewport={"width": 640, "height": 200})
    try:
        page.goto(html.as_uri())
        page.screenshot(path=str(png))
    finally:
        page.close()
    out = subprocess.run(
        ["zbarimg", "-q", "--raw", str(png)], capture_output=True, text=True, timeout=30
    )
    assert out.stdout.strip() == reference, out.stderr
