// The mesh viewer of `tfsym3d reconstruct`'s index.html: the phone page's ShapeView
// (web/view3d.js, three.js) showing each image's canonical shape, built by mesh.js from its
// canonical depth as on the phone. NAME/shape.js (tfsym3d.reconstruct.outputs) sets
//   window.TFSYM3D_SHAPES[NAME] = {size: S, camera: the model card's camera,
//     depth: base64 of float32 little-endian [S*S], texture: base64 of uint8 RGB [S*S*3]}
// and the page has an element with data-shape="NAME" for each. A page opened from disk
// cannot load ES modules, so mobile_demo/build_viewer.sh bundles this with three.js into
// one classic script, tfsym3d/viewer/shape_viewer.js, shipped in the package.

import {ShapeView} from '../web/view3d.js';

function bytes(base64) {
  const raw = atob(base64), out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

// Shows every [data-shape] element's shape; returns the views by name.
export function showAll(shapes = window.TFSYM3D_SHAPES || {}) {
  const views = {};
  for (const box of document.querySelectorAll('[data-shape]')) {
    const shape = shapes[box.dataset.shape];
    if (!shape) continue;
    const depth = new Float32Array(bytes(shape.depth).buffer);
    const texture = Float32Array.from(bytes(shape.texture), (v) => v / 255);
    const view = new ShapeView(box);
    view.show(depth, shape.size, shape.camera, texture);
    views[box.dataset.shape] = view;
  }
  return views;
}

window.addEventListener('load', () => { window.tfsym3dShapes = showAll(); });
