// Screenshots one element of a page (an http:// or file:// address) in headless
// Chromium (Debian's /usr/bin/chromium, through puppeteer-core), after the page has
// loaded and drawn, and prints one JSON object: the page's console lines and errors.
// Used by tests/test_reconstruct.py for the mesh viewer of reconstruct's index.html.
//
//   node mobile_demo/tests/shoot.mjs --url=file:///DIR/index.html \
//       --selector="canvas[data-mesh='NAME']" --out=FILE.png [--wait=1000]

import puppeteer from 'puppeteer-core';

const args = {};
for (const a of process.argv.slice(2)) {
  const m = a.match(/^--([a-z]+)=(.*)$/);
  if (!m) throw new Error(`shoot.mjs: bad argument ${a}`);
  args[m[1]] = m[2];
}
const browser = await puppeteer.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
  args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--no-first-run',
         '--use-angle=swiftshader', '--enable-unsafe-swiftshader']});
const report = {console: []};
try {
  const page = await browser.newPage();
  page.on('console', (m) => report.console.push(`${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => report.console.push(`pageerror: ${e.message}`));
  await page.setViewport({width: 1400, height: 900, deviceScaleFactor: 1});
  await page.goto(args.url, {waitUntil: 'load'});
  await new Promise((done) => setTimeout(done, Number(args.wait || 1000)));
  const element = await page.$(args.selector);
  if (!element) throw new Error(`no element matches ${args.selector}`);
  await element.screenshot({path: args.out});
} finally {
  await browser.close();
}
console.log(JSON.stringify(report));
