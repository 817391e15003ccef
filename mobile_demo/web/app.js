// The page: pick a photo or use the camera, run the exported model on this device, show
// the maps and the 3D shape. `?image=URL` (same origin) runs once on that picture and
// writes the outputs as JSON into #result; `?model=FILE.tflite` picks the model.

import {decodeFile, cropToInput} from './image.js';
import {loadModel} from './model.js';
import {paintDepth, paintNormals, paintRGB, lightDirection, relight} from './maps.js';
import {ShapeView} from './view3d.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const state = {model: null, out: null, busy: false, live: false, stream: null, view: null};

// A visible message under the buttons: kind 'error' (red) or 'info'.
function say(text, kind = 'error') {
  $('message').textContent = text;
  $('message').className = kind;
  $('message').hidden = !text;
}

function setStatus(text) { $('status').textContent = text; }

async function fetchJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`${url}: HTTP ${response.status}`);
  return response.json();
}

// models.json: [{"file": "model/tfsym3d_int8.tflite", "card": "model/tfsym3d_int8.card.json"}]
async function chooseModel(file) {
  let entry = state.models.find((m) => m.file.split('/').pop() === file);
  if (!entry) {
    entry = state.models[0];
    if (file) say(`${file}: not in this build; using ${entry.file.split('/').pop()}`);
  }
  setStatus(`loading ${entry.file.split('/').pop()}…`);
  const card = await fetchJSON(entry.card);
  state.model = await loadModel(entry.file, card);
  // ?crop=none: the picture's centre square whatever crop the model was trained with.
  if (params.get('crop') === 'none') state.model.crop = null;
  $('model').value = entry.file;
  for (const id of ['crop', 'map_depth', 'map_normal', 'map_albedo', 'map_relit']) {
    $(id).width = $(id).height = state.model.size;
  }
  setStatus(`${state.model.name} · ${state.model.backend}`);
}

// The model runs one picture at a time: each run waits for the one before (a photo
// picked during live mode waits for the frame in flight).
let queue = Promise.resolve();

// Runs the model on the crop of `source` and shows everything. Returns the outputs.
function reconstruct(source, mirror = false) {
  const run = queue.then(async () => {
    const pixels = cropToInput(source, $('crop'), state.model.crop, mirror);
    const t0 = performance.now();
    const out = await state.model.run(pixels);
    const ms = performance.now() - t0;
    state.out = out;
    show(out);
    return {out, ms};
  });
  queue = run.catch(() => {});
  return run;
}

function currentLight() {
  const v = $('light').dataset.touched ? Number($('light').value) : null;
  return lightDirection(state.out.canon_light_d, v);
}

function texture(out, lit) {
  const kind = $('texture').value;
  if (kind === 'albedo') return out.canon_albedo;
  if (kind === 'shading') {
    const grey = new Float32Array(lit.shading.length * 3);
    lit.shading.forEach((s, i) => grey.fill(Math.min(s, 1), 3 * i, 3 * i + 3));
    return grey;
  }
  return lit.image;
}

function show(out) {
  const s = state.model.size;
  const lit = relight(out, currentLight());
  paintDepth($('map_depth'), out.canon_depth, state.model.camera);
  paintNormals($('map_normal'), out.canon_normal);
  paintRGB($('map_albedo'), out.canon_albedo);
  paintRGB($('map_relit'), lit.image);
  state.view.show(out.canon_depth, s, state.model.camera, texture(out, lit));
  $('glb').disabled = false;
}

function relightOnly() {
  if (!state.out) return;
  const lit = relight(state.out, currentLight());
  paintRGB($('map_relit'), lit.image);
  state.view.setTexture(texture(state.out, lit));
}

function writeResult(out, ms) {
  const d = out.canon_light_d;
  $('result').textContent = JSON.stringify({
    model: state.model.name, backend: state.model.backend, ms,
    canon_depth: Array.from(out.canon_depth), view: Array.from(out.view),
    light: [out.canon_light_a[0], out.canon_light_b[0], d[0], d[1], d[2]],
  });
}

async function fromFile(file) {
  if (state.busy) return;
  state.busy = true;
  stopCamera();
  say('');
  try {
    const bitmap = await decodeFile(file);
    const s = state.model.size;
    if (bitmap.width !== s || bitmap.height !== s) {
      const crop = state.model.crop;
      const what = crop === null ? 'its centre square' : typeof crop === 'number' ?
        `its centre ${crop}-pixel square (the model's crop)` : `the model's crop box [${crop}]`;
      say(`${file.name}: ${bitmap.width}x${bitmap.height}; ${what} is resized to ${s}x${s}`,
          'info');
    }
    const {out, ms} = await reconstruct(bitmap);
    bitmap.close();
    $('timing').textContent = `${ms.toFixed(1)} ms on this device (${state.model.backend})`;
    writeResult(out, ms);
  } catch (e) {
    say(e.message);
    $('result').textContent = JSON.stringify({error: e.message});
  } finally {
    state.busy = false;
  }
}

async function startCamera() {
  say('');
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    say('No camera here: this browser gives no camera to this page (it needs https or localhost).');
    return;
  }
  try {
    state.stream = await navigator.mediaDevices.getUserMedia(
      {video: {facingMode: 'user', width: {ideal: 640}, height: {ideal: 480}}, audio: false});
  } catch (e) {
    const denied = e.name === 'NotAllowedError' || e.name === 'SecurityError';
    say(denied ? 'Camera access was denied: allow it in the browser, or pick a photo.'
               : `No camera: ${e.message || e.name}`);
    return;
  }
  const video = $('video');
  video.srcObject = state.stream;
  await video.play();
  $('frame').classList.add('camera');
  $('capture').hidden = $('live').hidden = false;
  $('camera').textContent = 'Stop camera';
}

function stopCamera() {
  state.live = false;
  $('live').classList.remove('on');
  if (!state.stream) return;
  for (const track of state.stream.getTracks()) track.stop();
  state.stream = null;
  $('video').srcObject = null;
  $('frame').classList.remove('camera');
  $('capture').hidden = $('live').hidden = true;
  $('camera').textContent = 'Camera';
}

async function capture() {
  if (state.busy || state.live || !state.stream) return;
  state.busy = true;
  try {
    const {out, ms} = await reconstruct($('video'), true);
    $('timing').textContent = `${ms.toFixed(1)} ms on this device (${state.model.backend})`;
    writeResult(out, ms);
  } finally {
    state.busy = false;
  }
}

// Live mode: one frame after another, as fast as the model runs; frames per second
// over the last second.
async function liveLoop() {
  const times = [];
  while (state.live && state.stream) {
    if ($('video').readyState < 2) {  // no frame yet
      await new Promise((r) => requestAnimationFrame(r));
      continue;
    }
    const {ms} = await reconstruct($('video'), true);
    const now = performance.now();
    times.push(now);
    while (times.length && now - times[0] > 1000) times.shift();
    const fps = times.length > 1 ? (times.length - 1) * 1000 / (now - times[0]) : 0;
    window.tfsym3dDemo.fps = fps;
    window.tfsym3dDemo.frames += 1;
    $('timing').textContent = `live: ${fps.toFixed(1)} frames/s, model ${ms.toFixed(1)} ms`;
    await new Promise((r) => requestAnimationFrame(r));
  }
}

function toggleLive() {
  state.live = !state.live;
  $('live').classList.toggle('on', state.live);
  if (state.live) liveLoop().catch((e) => { state.live = false; say(e.message); });
}

async function downloadGLB() {
  const glb = await state.view.glb();
  const a = document.createElement('a');
  a.href = URL.createObjectURL(new Blob([glb], {type: 'model/gltf-binary'}));
  a.download = 'tfsym3d_shape.glb';
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

async function main() {
  state.view = new ShapeView($('view3d'));
  window.tfsym3dDemo = {state, fps: 0, frames: 0, ready: false};
  state.models = await fetchJSON('model/models.json');
  for (const m of state.models) {
    $('model').append(new Option(m.file.split('/').pop(), m.file));
  }
  await chooseModel(params.get('model'));
  $('file').addEventListener('change', (e) => {
    const file = e.target.files[0];
    e.target.value = '';
    if (file) fromFile(file);
  });
  $('camera').addEventListener('click', () => (state.stream ? stopCamera() : startCamera()));
  $('capture').addEventListener('click', capture);
  $('live').addEventListener('click', toggleLive);
  $('glb').addEventListener('click', downloadGLB);
  $('light').addEventListener('input', () => { $('light').dataset.touched = '1'; relightOnly(); });
  $('texture').addEventListener('change', relightOnly);
  $('model').addEventListener('change', async () => {
    const file = $('model').value.split('/').pop();
    try { await chooseModel(file); } catch (e) { say(e.message); }
  });
  window.tfsym3dDemo.ready = true;
  const image = params.get('image');
  if (image) {
    const response = await fetch(image);
    if (!response.ok) {
      say(`${image}: HTTP ${response.status}`);
      $('result').textContent = JSON.stringify({error: `${image}: HTTP ${response.status}`});
      return;
    }
    const blob = await response.blob();
    await fromFile(new File([blob], image.split('/').pop(), {type: blob.type}));
  }
}

main().catch((e) => { setStatus('failed'); say(e.message); console.error(e); });
