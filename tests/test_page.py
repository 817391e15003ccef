"""The phone page's shared rules (tfsym3d.export.page): written from Python into the
built page's constants.js, and defined nowhere in the page's own JavaScript."""

import glob
import json
import os
import re

from tfsym3d.export import page
from tfsym3d.io import images
from tfsym3d.reconstruct import mesh, pictures

WEB = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                   "mobile_demo", "web")


def test_constants_js_holds_the_python_values(tmp_path):
    page.write(str(tmp_path / "constants.js"))
    text = (tmp_path / "constants.js").read_text()
    found = dict(re.findall(r"^export const (\w+) = (.*);$", text, re.M))
    values = {k: json.loads(v) for k, v in found.items()}
    assert values["MAX_PIXELS"] == images.MAX_PIXELS == 50_000_000
    assert values["JPEG_MAX_PIXELS_PER_BYTE"] == images.JPEG_MAX_PIXELS_PER_BYTE
    assert values["BORDER_TRIM"] == mesh.BORDER_TRIM
    assert values["MAGMA"] == pictures.MAGMA.tolist() and len(values["MAGMA"]) == 6


def test_the_page_defines_none_of_them_itself():
    sources = {p: open(p).read() for p in glob.glob(os.path.join(WEB, "*.js"))}
    assert sources
    for name in page.constants():
        for path, text in sources.items():
            assert not re.search(rf"\bconst {name}\s*=", text), (path, name)
    importers = [p for p, t in sources.items() if "from './constants.js'" in t]
    assert len(importers) == 3, importers  # image.js, maps.js, mesh.js
