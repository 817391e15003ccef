// Drives the built web app in headless Chromium (Debian's /usr/bin/chromium, through
// puppeteer-core) and prints one JSON object with what the page showed. Used by
// tests/test_mobile.py and benchmarks/bench_mobile.py.
//
//   node mobile_demo/tests/drive.mjs --url=http://127.0.0.1:PORT/index.html?model=X
//       [--viewport=412x915] [--touch] [--upload=FILE ...] [--camera=deny]
//       [--screenshot=FILE.png] [--shot3d=FILE.png] [--live=SECONDS --video=FILE.y4m]
//       [--repeat=N] [--glb=DIR] [--light=DEGREES] [--result]
//
// --result waits for the page's own #result (a URL with ?image=) and records it. Each
// --upload feeds FILE through the page's file input and records the page's #result
// JSON, its visible message, the 3D mesh's vertices and the depth and normal canvases'
// pixels; --repeat=N uploads the last file N more times and reports their inference times; --light moves the light slider and
// records the relit canvas's pixels before and after; --glb clicks Download GLB and
// waits for the file in DIR; --camera=deny clicks Camera with the permission denied and
// records the message; --live plays --video as the camera (in a loop) in live mode for
// SECONDS and records the frames per second, the frame counter and the mesh.

import puppeteer from 'puppeteer-core';

const args = {upload: []};
for (const a of process.argv.slice(2)) {
  const m = a.match(/^--([a-z0-9]+)(?:=(.*))?$/);
  if (!m) throw new Error(`drive.mjs: bad argument ${a}`);
  if (m[1] === 'upload') args.upload.push(m[2]);
  else args[m[1]] = m[2] === undefined ? true : m[2];
}
const [width, height] = (args.viewport || '1280x900').split('x').map(Number);
const flags = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic',
  '--no-first-run', '--disable-background-networking', '--disable-component-update',
  '--disable-sync', '--use-angle=swiftshader', '--enable-unsafe-swiftshader'];
// A fake camera: --video's frames, allowed without asking; or, for --camera=deny, a
// test pattern whose permission is refused below.
if (args.video || args.camera) flags.push('--use-fake-device-for-media-stream');
if (args.video) {
  flags.push('--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${args.video}`);
}
const browser = await puppeteer.launch({executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
                                        args: flags, headless: true});
const report = {console: [], uploads: []};
try {
  const page = await browser.newPage();
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  await page.setViewport({width, height, isMobile: !!args.touch, hasTouch: !!args.touch,
                          deviceScaleFactor: 1});
  const origin = new URL(args.url).origin;
  const cdp = await page.createCDPSession();
  if (args.camera === 'deny') {
    await cdp.send('Browser.setPermission', {origin, permission: {name: 'camera'},
                                             setting: 'denied'});
  }
  await page.goto(args.url, {waitUntil: 'load'});
  await page.waitForFunction(() => (window.tfsym3dDemo && window.tfsym3dDemo.ready) ||
                             document.getElementById('status').textContent === 'failed',
                             {timeout: 120000});
  report.status = await page.$eval('#status', (e) => e.textContent);

  const upload = async (file) => {
    await page.$eval('#result', (e) => { e.textContent = ''; });
    const input = await page.$('#file');
    await input.uploadFile(file);
    await page.waitForFunction(() => document.getElementById('result').textContent !== '',
                               {timeout: 120000});
    return page.evaluate(() => ({
      result: JSON.parse(document.getElementById('result').textContent),
      message: document.getElementById('message').hidden ? '' :
        `${document.getElementById('message').className}: ` +
        document.getElementById('message').textContent,
      vertices: window.tfsym3dDemo.state.view.vertices(),
      // The depth and normal canvases' RGB bytes, row by row.
      canvases: Object.fromEntries(['map_depth', 'map_normal'].map((id) => {
        const c = document.getElementById(id);
        const rgba = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return [id, Array.from(rgba).filter((_, k) => k % 4 !== 3)];
      })),
    }));
  };
  if (args.result) {  // ?image=URL: the page runs by itself
    await page.waitForFunction(() => document.getElementById('result').textContent !== '',
                               {timeout: 120000});
    report.result = JSON.parse(await page.$eval('#result', (e) => e.textContent));
  }
  for (const file of args.upload) report.uploads.push(await upload(file));
  if (args.repeat && args.upload.length) {
    report.repeat_ms = [];
    for (let i = 0; i < Number(args.repeat); i++) {
      report.repeat_ms.push((await upload(args.upload.at(-1))).result.ms);
    }
  }
  const relitPixels = () => page.$eval('#map_relit', (c) =>
    Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data));
  if (args.light !== undefined) {
    report.relit_before = await relitPixels();
    await page.$eval('#light', (e, v) => {
      e.value = v;
      e.dispatchEvent(new Event('input', {bubbles: true}));
    }, args.light);
    report.relit_after = await relitPixels();
  }
  if (args.glb) {
    await cdp.send('Browser.setDownloadBehavior', {behavior: 'allow', downloadPath: args.glb,
                                                   eventsEnabled: true});
    const done = new Promise((resolve) => cdp.on('Browser.downloadProgress', (e) => {
      if (e.state === 'completed' || e.state === 'canceled') resolve(e.state);
    }));
    await page.click('#glb');
    report.glb = await done;
  }
  if (args.camera === 'deny') {
    await page.click('#camera');
    await page.waitForFunction(() => !document.getElementById('message').hidden, {timeout: 30000});
    report.camera_message = await page.$eval('#message', (e) => e.textContent);
  }
  if (args.live) {
    await page.click('#camera');
    await page.waitForSelector('#live:not([hidden])', {timeout: 30000});
    await page.click('#live');
    await new Promise((r) => setTimeout(r, 2000)); // warm-up
    const frames0 = await page.evaluate(() => window.tfsym3dDemo.frames);
    const t0 = Date.now();
    await new Promise((r) => setTimeout(r, Number(args.live) * 1000));
    const frames1 = await page.evaluate(() => window.tfsym3dDemo.frames);
    report.live_fps = (frames1 - frames0) * 1000 / (Date.now() - t0);
    report.live_frames = frames1;
    report.live_timing = await page.$eval('#timing', (e) => e.textContent);
    report.live_vertices = await page.evaluate(() => window.tfsym3dDemo.state.view.vertices());
    await page.click('#live');
  }
  if (args.screenshot) await page.screenshot({path: args.screenshot, fullPage: true});
  if (args.shot3d) await (await page.$('#view3d canvas')).screenshot({path: args.shot3d});
} finally {
  await browser.close();
}
process.stdout.write(JSON.stringify(report) + '\n');
