"""The rules the phone page shares with Python, written into the built page as
`constants.js` (mobile_demo/build.sh runs this), so that one source holds each:

  MAX_PIXELS                the most pixels a picture may declare (tfsym3d.io.images)
  JPEG_MAX_PIXELS_PER_BYTE  a JPEG header claiming more is corrupt (tfsym3d.io.images)
  MAGMA                     the depth colour map's anchors, RGB in [0, 1]
                            (tfsym3d.reconstruct.pictures)
  BORDER_TRIM               pixels dropped on each side of the mesh
                            (tfsym3d.reconstruct.mesh)

    from tfsym3d.export import page
    page.write("OUT/constants.js")
"""

import json


def constants():
    """{name: value} of the shared rules, from the modules that define them."""
    from tfsym3d.io import images
    from tfsym3d.reconstruct import mesh, pictures

    return {"MAX_PIXELS": images.MAX_PIXELS,
            "JPEG_MAX_PIXELS_PER_BYTE": images.JPEG_MAX_PIXELS_PER_BYTE,
            "MAGMA": pictures.MAGMA.tolist(),
            "BORDER_TRIM": mesh.BORDER_TRIM}


def javascript():
    """constants() as an ES module's text."""
    lines = ["// Written by tfsym3d.export.page.write when the page is built, from the",
             "// Python modules that define these rules (one source each); do not edit."]
    lines += [f"export const {k} = {json.dumps(v)};" for k, v in constants().items()]
    return "\n".join(lines) + "\n"


def write(path):
    """Writes javascript() to path (the built page's constants.js)."""
    with open(path, "w") as f:
        f.write(javascript())
