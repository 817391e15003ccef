// The model's maps as pictures (RGBA for a canvas), and the relighting formula of
// tfsym3d.renderer.shading.lambertian: shading = ambient + diffuse * max(0, n . d),
// image = clip(albedo * shading, 0, 1).

// Writes values v(i) -> [r, g, b] in 0..1 into an S x S canvas.
function paint(canvas, n, colour) {
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(canvas.width, canvas.height);
  for (let i = 0; i < n; i++) {
    const [r, g, b] = colour(i);
    img.data[4 * i] = Math.round(255 * Math.min(Math.max(r, 0), 1));
    img.data[4 * i + 1] = Math.round(255 * Math.min(Math.max(g, 0), 1));
    img.data[4 * i + 2] = Math.round(255 * Math.min(Math.max(b, 0), 1));
    img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// MAGMA: the anchor colours of the depth colour map, written from Python at build time.
import {MAGMA} from './constants.js';

// tfsym3d.reconstruct.pictures.colormap: v in [0, 1] -> [r, g, b], piecewise linear.
function magma(v) {
  const x = Math.min(Math.max(Number.isFinite(v) ? v : 0, 0), 1) * (MAGMA.length - 1);
  const lo = Math.min(Math.floor(x), MAGMA.length - 2), f = x - lo;
  return [0, 1, 2].map((c) => MAGMA[lo][c] * (1 - f) + MAGMA[lo + 1][c] * f);
}

// Depth [S*S] camera units, as tfsym3d.reconstruct.pictures.depth_image draws it: magma
// over the model's [min_depth, max_depth] (camera: the model card's), near = bright.
export function paintDepth(canvas, depth, camera) {
  const lo = camera.min_depth, hi = camera.max_depth;
  paint(canvas, canvas.width * canvas.height, (i) => magma((hi - depth[i]) / (hi - lo)));
}

// Unit normals [S*S*3], camera space (x right, y down, z away from the camera), as
// tfsym3d.reconstruct.pictures.normal_image draws them: the usual normal map of the
// normal towards the viewer, x right -> red, y up -> green, towards the viewer -> blue
// (a surface facing the camera is (0.5, 0.5, 1)); a zero vector (nothing seen) is white.
export function paintNormals(canvas, normal) {
  paint(canvas, canvas.width * canvas.height, (i) => {
    const [x, y, z] = [normal[3 * i], normal[3 * i + 1], normal[3 * i + 2]];
    if (x === 0 && y === 0 && z === 0) return [1, 1, 1];
    return [(1 - x) / 2, (1 + y) / 2, (1 + z) / 2];
  });
}

export function paintRGB(canvas, rgb) {
  paint(canvas, canvas.width * canvas.height, (i) => [rgb[3 * i], rgb[3 * i + 1], rgb[3 * i + 2]]);
}

// The light direction (x, y, 1) normalised, turned about the vertical axis to `degrees`
// (0 = the model's own x). Returns [dx, dy, dz].
export function lightDirection(modelD, degrees) {
  if (degrees === null) return Array.from(modelD);
  const t = degrees * Math.PI / 180;
  const horiz = Math.hypot(modelD[0], modelD[2]);
  return [horiz * Math.sin(t), modelD[1], horiz * Math.cos(t)];
}

// Shading [S*S] and the relit image [S*S*3] for light direction d.
export function relight(out, d) {
  const n = out.canon_normal, albedo = out.canon_albedo;
  const a = out.canon_light_a[0], b = out.canon_light_b[0];
  const count = n.length / 3;
  const shading = new Float32Array(count), image = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    const cos = Math.max(n[3 * i] * d[0] + n[3 * i + 1] * d[1] + n[3 * i + 2] * d[2], 0);
    shading[i] = a + b * cos;
    for (let c = 0; c < 3; c++) image[3 * i + c] = Math.min(Math.max(albedo[3 * i + c] * shading[i], 0), 1);
  }
  return {shading, image};
}
