// The exported TFLite model on the device: LiteRT.js (WebAssembly, XNNPACK on the CPU).
// One input, `images` [1, S, S, 3] float32 in 0..1; outputs by name, as the model card
// lists them (tfsym3d.model.OUTPUTS less the re-rendering).

import {loadLiteRt, loadAndCompile, Tensor} from '@litertjs/core';

let runtime = null;

// Loads the WebAssembly runtime once; the threaded build only where the page is
// cross-origin isolated (SharedArrayBuffer), else the single-threaded one.
async function ensureRuntime() {
  if (!runtime) {
    const threads = self.crossOriginIsolated === true;
    runtime = loadLiteRt(new URL('vendor/litertjs/core/wasm/', document.baseURI).href,
                         {threads}).then(() => ({threads}));
  }
  return runtime;
}

// url: the .tflite file; card: its model card (JSON written by `tfsym3d export`).
// Returns {name, size, crop, camera, backend, run(pixels) -> {output name: Float32Array}}
// (crop: the card's input.crop, the model's config crop; null on cards that predate it).
export async function loadModel(url, card) {
  const {threads} = await ensureRuntime();
  const numThreads = threads ? Math.min(navigator.hardwareConcurrency || 1, 4) : 1;
  const compiled = await loadAndCompile(url, {accelerator: 'wasm', cpuOptions: {numThreads}});
  const size = card.input.shape[1];
  const name = url.split('/').pop();
  const model = {
    name, size, card, camera: card.camera, crop: card.input.crop ?? null,
    backend: `LiteRT.js wasm (XNNPACK), ${numThreads} thread${numThreads > 1 ? 's' : ''}`,
    // pixels: Float32Array [S*S*3], RGB row-major in 0..1.
    async run(pixels) {
      const input = new Tensor(pixels, [1, size, size, 3]);
      let outputs;
      try {
        outputs = await compiled.run({images: input});
      } finally {
        input.delete();
      }
      const result = {};
      for (const [key, tensor] of Object.entries(outputs)) {
        result[key] = Float32Array.from(tensor.toTypedArray());
        tensor.delete();
      }
      return result;
    },
  };
  // One run at load time: the first one sets up XNNPACK's kernels (several times slower).
  await model.run(new Float32Array(size * size * 3));
  return model;
}
