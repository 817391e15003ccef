// The canonical depth as a mesh, built exactly as tfsym3d.reconstruct.mesh.mesh_arrays
// builds mesh.obj / mesh.glb in Python (tests/test_mobile.py checks the two agree): one
// vertex per pixel centre, two triangles per pixel quad, `trim` pixels dropped on every
// side (the fixed border columns). Frame: x right, y up, z towards the viewer, centred on
// the rotation centre; camera units.

// BORDER_TRIM: written from tfsym3d.reconstruct.mesh at build time.
import {BORDER_TRIM} from './constants.js';
export {BORDER_TRIM};

// depth: Float32Array [h*w] row-major, camera units (z forward).
// camera: {intrinsics: [[fx,0,cx],[0,fy,cy],[0,0,1]], rot_center_depth} (the model card's).
// Returns Float32Array [V*3], V = (h - 2 trim)(w - 2 trim); written into `out` if given.
export function meshVertices(depth, h, w, camera, trim = BORDER_TRIM, out = null) {
  const [[fx, , cx], [, fy, cy]] = camera.intrinsics;
  const hh = h - 2 * trim, ww = w - 2 * trim;
  const v = out || new Float32Array(hh * ww * 3);
  let k = 0;
  for (let i = trim; i < h - trim; i++) {
    for (let j = trim; j < w - trim; j++) {
      const z = depth[i * w + j];
      // Unproject the pixel centre (j, i), then flip y and z (y up, facing +z) and move
      // the rotation centre to the origin. Math.fround keeps float32 steps like numpy's.
      const x = Math.fround(Math.fround((j - cx) / fx) * z);
      const y = Math.fround(Math.fround((i - cy) / fy) * z);
      v[k++] = x;
      v[k++] = -y;
      v[k++] = Math.fround(-z + camera.rot_center_depth);
    }
  }
  return v;
}

// Uint32Array [F*3], F = 2 (hh - 1)(ww - 1): for each quad (a b / c d), (a, c, b) and
// then, after all of those, (b, c, d); counter-clockwise seen from +z.
export function meshFaces(h, w, trim = BORDER_TRIM) {
  const hh = h - 2 * trim, ww = w - 2 * trim, quads = (hh - 1) * (ww - 1);
  const f = new Uint32Array(quads * 6);
  let q = 0;
  for (let i = 0; i < hh - 1; i++) {
    for (let j = 0; j < ww - 1; j++, q++) {
      const a = i * ww + j, b = a + 1, c = a + ww, d = c + 1;
      f.set([a, c, b], q * 3);
      f.set([b, c, d], (quads + q) * 3);
    }
  }
  return f;
}

// Float32Array [V*2]: texel centres of the trimmed texture, v up.
export function meshUV(h, w, trim = BORDER_TRIM) {
  const hh = h - 2 * trim, ww = w - 2 * trim;
  const uv = new Float32Array(hh * ww * 2);
  let k = 0;
  for (let i = 0; i < hh; i++) {
    for (let j = 0; j < ww; j++) {
      uv[k++] = (j + 0.5) / ww;
      uv[k++] = 1 - (i + 0.5) / hh;
    }
  }
  return uv;
}
