// The built-in chat page in a real headless browser (Debian's chromium, driven by the
// npm package playwright-core): load it, send a message, wait for the streamed reply,
// take a screenshot and check that the reply is really drawn.
//   node browser_chat.mjs NODE_MODULES BASE_URL API_KEY SCREENSHOT.png
import { createRequire } from "node:module";
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { inflateSync } from "node:zlib";

const [nodeModules, baseURL, apiKey, shot] = process.argv.slice(2);
const require = createRequire(nodeModules + "/");
const { chromium } = require("playwright-core");

// A small PNG decoder (8-bit RGB/RGBA, non-interlaced: what Chromium writes).
function decodePng(buf) {
  assert.equal(buf.readUInt32BE(0), 0x89504e47, "PNG signature");
  let pos = 8, w = 0, h = 0, type = 0;
  const idat = [];
  while (pos < buf.length) {
    const len = buf.readUInt32BE(pos), tag = buf.toString("ascii", pos + 4, pos + 8), data = buf.subarray(pos + 8, pos + 8 + len);
    if (tag === "IHDR") { w = data.readUInt32BE(0); h = data.readUInt32BE(4); assert.equal(data[8], 8); type = data[9]; assert.equal(data[12], 0); }
    if (tag === "IDAT") idat.push(data);
    pos += 12 + len;
  }
  const bpp = type === 6 ? 4 : 3, stride = w * bpp, raw = inflateSync(Buffer.concat(idat)), out = Buffer.alloc(h * stride);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (stride + 1)], line = raw.subarray(y * (stride + 1) + 1, (y + 1) * (stride + 1));
    for (let x = 0; x < stride; x++) {
      const a = x >= bpp ? out[y * stride + x - bpp] : 0, b = y ? out[(y - 1) * stride + x] : 0;
      const c = x >= bpp && y ? out[(y - 1) * stride + x - bpp] : 0;
      let v = line[x];
      if (f === 1) v += a; else if (f === 2) v += b; else if (f === 3) v += (a + b) >> 1;
      else if (f === 4) { const p = a + b - c, pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c); v += pa <= pb && pa <= pc ? a : pb <= pc ? b : c; }
      out[y * stride + x] = v & 255;
    }
  }
  return { w, h, bpp, px: out };
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium", headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 900, height: 640 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(baseURL + "/");
  if (apiKey) { await page.fill("#key", apiKey); await page.dispatchEvent("#key", "change"); }
  await page.waitForFunction(() => !document.getElementById("model").textContent.startsWith("connecting") &&
                                   !document.getElementById("model").textContent.startsWith("not connected"));
  await page.fill("#temp", "0");
  await page.fill("#input", "Hello from the browser");
  await page.press("#input", "Enter");
  await page.waitForSelector(".msg.user");
  // the reply streams in; the stats line appears when it has finished
  await page.waitForFunction(() => document.getElementById("stats").textContent.includes("tokens"), null, { timeout: 100000 });
  const reply = await page.textContent(".msg.assistant .text");
  assert.ok(reply.length > 0, "the assistant replied");
  assert.equal(await page.$$eval(".msg.error", (e) => e.length), 0, "no error bubble");
  const png = await page.screenshot({ fullPage: false });
  writeFileSync(shot, png);
  const img = decodePng(png);
  assert.equal(img.w, 900);
  // the user bubble's background (#dbe8ff) is on screen, and the reply bubble holds text pixels
  let userBg = 0;
  for (let i = 0; i < img.px.length; i += img.bpp) if (img.px[i] === 0xdb && img.px[i + 1] === 0xe8 && img.px[i + 2] === 0xff) userBg++;
  assert.ok(userBg > 500, "user bubble drawn (" + userBg + " px)");
  const bub = decodePng(await page.locator(".msg.assistant").screenshot());
  let dark = 0;
  for (let i = 0; i < bub.px.length; i += bub.bpp) if (bub.px[i] + bub.px[i + 1] + bub.px[i + 2] < 300) dark++;
  assert.ok(dark > 30, "reply text drawn (" + dark + " dark px)");
  assert.deepEqual(errors, []);
  console.log("ok browser chat:", JSON.stringify(reply.slice(0, 60)), userBg, dark);
} finally {
  await browser.close();
}
