// End-to-end driver for the browser tests of tests/wasm_e2e.rs: opens headless Chromium pages that
// play one HLS stream with hls.js plus a P2P engine (p2p-media-loader v2 from npm, or the segswarm
// wasm package), lets each play for a while, samples what each page reports (`globalThis.__e2e`,
// see e2e-page.js) once a second, and prints one JSON report on stdout.
//
//   node e2e-run.mjs --tracker ws://127.0.0.1:PORT --media DIR --playlist /media/index.m3u8 \
//        --page pml:a:0 --page pml:b:8 --seconds 30 [--swarm-id ID] [--pkg DIR] \
//        [--screenshot FILE] [--timeout-ms N] [--core JSON] [--segswarm JSON] [--hls JSON]
//
// --page KIND:NAME:START_S opens a page START_S seconds after the first one. KIND is `pml`
// (p2p-media-loader 2.3), `pml-2.2` (p2p-media-loader 2.2 configured as PeerTube's player: give
// --segments-sha256 URL, and --live for a live stream), `segswarm`, or `url=<address>` for a page served elsewhere (the demo; it must publish
// `globalThis.__e2e` itself). --media DIR is served (with CORS) at /media/ by this script's own HTTP
// server, which also serves the test pages; --playlist is an absolute URL or a path on that server.
// --core, --segswarm and --hls are merged into the p2p-media-loader core config, the segswarm
// options and the hls.js config of the pages. Each page plays --seconds seconds from its start. The report holds each page's last figures and
// its one-second timeline; the Rust test asserts on them. Exits 0 when the harness ran (whatever
// the figures), non-zero when it could not (bundling, browser, page errors) or on timeout. Run it
// inside a network namespace with only `lo` (the Rust tests do `unshare(CLONE_NEWNET)`).

import { existsSync } from 'node:fs'
import http from 'node:http'
import { dirname, join, resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serveFile } from '../../examples/web/static.mjs'

import * as esbuild from 'esbuild'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolvePath(here, '..', '..')

const opts = { trackers: [], pages: [], seconds: 30, timeoutMs: 85_000, pkg: join(repo, 'wasm-peer', 'pkg'), core: {}, segswarm: {}, hls: {} }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  const next = () => argv[++i]
  if (a === '--tracker') opts.trackers.push(next())
  else if (a === '--media') opts.media = resolvePath(next())
  else if (a === '--playlist') opts.playlist = next()
  else if (a === '--page') {
    const spec = next()
    // Split from the end: KIND may be `url=http://host:port/`.
    const last = spec.lastIndexOf(':')
    const first = spec.lastIndexOf(':', last - 1)
    const kind = spec.slice(0, first)
    const name = spec.slice(first + 1, last)
    const startS = Number(spec.slice(last + 1))
    if (!kind || !name || !Number.isFinite(startS)) usage(`bad --page ${spec}`)
    opts.pages.push({ kind, name, startS })
  } else if (a === '--seconds') opts.seconds = Number(next())
  else if (a === '--swarm-id') opts.swarmId = next()
  else if (a === '--segments-sha256') opts.segmentsSha256Url = next()
  else if (a === '--live') opts.live = true
  else if (a === '--pkg') opts.pkg = resolvePath(next())
  else if (a === '--screenshot') opts.screenshot = resolvePath(next())
  else if (a === '--timeout-ms') opts.timeoutMs = Number(next())
  else if (a === '--core') Object.assign(opts.core, JSON.parse(next()))
  else if (a === '--segswarm') Object.assign(opts.segswarm, JSON.parse(next()))
  else if (a === '--hls') Object.assign(opts.hls, JSON.parse(next()))
  else usage(`unknown argument ${a}`)
}
if (!opts.pages.length || (!opts.playlist && opts.pages.some((p) => !p.kind.startsWith('url=')))) {
  usage('need --page and --playlist')
}

function usage (why) {
  console.error(`e2e-run.mjs: ${why}\nsee the comment at the top of tests/js/e2e-run.mjs`)
  process.exit(2)
}

const report = { ok: false, error: null, trackers: opts.trackers, playlist: null, origin: { requests: 0, bytes: 0 }, pages: [], elapsed_ms: 0 }
const started = Date.now()
let browser = null
let server = null

function finish (code) {
  report.elapsed_ms = Date.now() - started
  // The Playwright page objects stay out of the report.
  process.stdout.write(JSON.stringify(report, (k, v) => (k === 'page' ? undefined : v)) + '\n')
  process.exit(code)
}

/** `promise`, or undefined after `ms` if it has not settled by then. */
function bounded (promise, ms) {
  return Promise.race([promise, new Promise((resolve) => setTimeout(resolve, ms).unref())])
}

/** Closes the browser and the server; never takes more than a few seconds. */
async function cleanup () {
  try { if (browser) await bounded(browser.close(), 5000) } catch {}
  try { if (server) server.close() } catch {}
}

const watchdog = setTimeout(() => {
  report.error = report.error || `timed out after ${opts.timeoutMs} ms`
  cleanup().finally(() => finish(3))
}, opts.timeoutMs)

async function bundle (entry, format) {
  const out = await esbuild.build({
    entryPoints: [join(here, entry)],
    bundle: true,
    format,
    platform: 'browser',
    target: 'chrome110',
    write: false,
    logLevel: 'silent',
    // The wasm package's module is served as a file next to the bundle, not inlined.
    external: ['/pkg/*'],
    define: { global: 'globalThis', 'process.browser': 'true', 'process.env.NODE_ENV': '"production"' }
  })
  return out.outputFiles[0].text
}

try {
  const kinds = new Set(opts.pages.map((p) => p.kind))
  const bundles = {}
  if (kinds.has('pml')) bundles['/pml.js'] = await bundle('pml-entry.js', 'iife')
  if (kinds.has('pml-2.2')) bundles['/pml-2.2.js'] = await bundle(join('pml-2.2', 'peertube-entry.js'), 'iife')
  if (kinds.has('segswarm')) {
    if (!existsSync(join(opts.pkg, 'package.json'))) throw new Error(`no wasm package at ${opts.pkg} (build it: see wasm-peer/README.md)`)
    bundles['/segswarm.js'] = await bundle('e2e-segswarm-entry.js', 'esm')
  }
  const pageHtml = (kind) => `<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>segswarm e2e ${kind}</title><body></body>` +
    `<script ${kind === 'segswarm' ? 'type="module" ' : ''}src="/${kind}.js"></script>`

  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x')
    if (req.method === 'OPTIONS') {
      res.writeHead(204, { 'access-control-allow-origin': '*', 'access-control-allow-headers': '*' })
      res.end()
    } else if (bundles[url.pathname]) {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(bundles[url.pathname])
    } else if (['/pml.html', '/pml-2.2.html', '/segswarm.html'].includes(url.pathname)) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
      res.end(pageHtml(url.pathname.slice(1, -5)))
    } else if (url.pathname.startsWith('/pkg/')) {
      serveFile(res, opts.pkg, url.pathname.slice(5))
    } else if (opts.media && url.pathname.startsWith('/media/')) {
      report.origin.requests += 1
      report.origin.bytes += serveFile(res, opts.media, url.pathname.slice(7), req)
    } else {
      res.writeHead(404)
      res.end()
    }
  })
  server.on('clientError', (_err, socket) => socket.destroy())
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve))
  const base = `http://127.0.0.1:${server.address().port}`
  report.playlist = opts.playlist && new URL(opts.playlist, base).href

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    timeout: 30_000,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--autoplay-policy=no-user-gesture-required',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns'
    ]
  })

  process.stderr.write(`e2e-run: Chromium ${browser.version()} up at ${((Date.now() - started) / 1000).toFixed(1)} s\n`)

  const sample = async (entry) => {
    try {
      const s = await bounded(entry.page.evaluate(() => globalThis.__e2e ? JSON.parse(JSON.stringify(globalThis.__e2e)) : null), 5000)
      if (s) entry.stats = s
    } catch (err) {
      entry.sampleError = String(err && err.message)
    }
  }

  const runPage = async (spec) => {
    await new Promise((resolve) => setTimeout(resolve, spec.startS * 1000))
    const entry = { name: spec.name, kind: spec.kind, start_s: spec.startS, started_ms: Date.now() - started, stats: null, timeline: [], page_errors: [] }
    report.pages.push(entry)
    // Chromium offers host candidates (127.0.0.1 here) only to pages holding a camera or microphone
    // permission; without it two browsers on a loopback-only host have nothing to connect to.
    const context = await browser.newContext({ permissions: ['camera', 'microphone'], viewport: { width: 960, height: 640 } })
    const page = await context.newPage()
    entry.page = page
    page.on('console', (msg) => process.stderr.write(`[${spec.name}] ${msg.text()}\n`))
    page.on('pageerror', (err) => {
      entry.page_errors.push(err.message)
      process.stderr.write(`[${spec.name} error] ${err.message}\n`)
    })
    const options = { playlist: report.playlist, trackers: opts.trackers, swarmId: opts.swarmId, segmentsSha256Url: opts.segmentsSha256Url, live: opts.live, core: opts.core, segswarm: opts.segswarm, hls: opts.hls }
    if (spec.kind.startsWith('url=')) {
      await page.goto(spec.kind.slice(4), { timeout: 20_000 })
    } else {
      const fn = spec.kind === 'segswarm' ? 'startSegswarm' : 'startPml'
      await page.goto(`${base}/${spec.kind}.html`, { timeout: 20_000 })
      await page.waitForFunction((f) => typeof globalThis[f] === 'function', fn, { timeout: 20_000 })
      await page.evaluate(([f, o]) => globalThis[f](o), [fn, options])
    }
    process.stderr.write(`e2e-run: page ${spec.name} (${spec.kind}) started at ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
    const t0 = Date.now()
    while (Date.now() - t0 < opts.seconds * 1000) {
      await new Promise((resolve) => setTimeout(resolve, 1000))
      await sample(entry)
      const s = entry.stats
      if (s) {
        entry.timeline.push({ t: Math.round((Date.now() - t0) / 100) / 10, currentTime: s.currentTime, http: s.httpBytes, p2p: s.p2pBytes, up: s.uploadedBytes, peers: s.peers.length })
      }
    }
    // A page with a chart (the demo) describes its colours on the canvas: count the pixels drawn
    // in each, so the test checks what the chart shows, not only the numbers behind it.
    entry.chart = await bounded(page.evaluate(() => {
      const canvas = document.querySelector('canvas[data-p2p-color]')
      if (!canvas) return null
      const hex = (c) => [1, 3, 5].map((i) => parseInt(c.slice(i, i + 2), 16))
      const colors = { http: hex(canvas.dataset.httpColor), p2p: hex(canvas.dataset.p2pColor) }
      const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data
      const counts = { http: 0, p2p: 0 }
      for (let i = 0; i < data.length; i += 4) {
        for (const [k, [r, g, b]] of Object.entries(colors)) {
          if (data[i] === r && data[i + 1] === g && data[i + 2] === b && data[i + 3] === 255) counts[k] += 1
        }
      }
      return counts
    }), 5000).catch((err) => ({ error: String(err && err.message) }))
    if (opts.screenshot && spec === opts.pages[opts.pages.length - 1]) {
      await page.screenshot({ path: opts.screenshot, timeout: 15_000 })
      entry.screenshot = opts.screenshot
    }
  }

  await Promise.all(opts.pages.map(runPage))
  for (const entry of report.pages) {
    const s = entry.stats
    process.stderr.write(`page ${entry.name} (${entry.kind}): ` + (s
      ? `t=${s.currentTime.toFixed(1)}s http=${s.httpBytes} p2p=${s.p2pBytes} up=${s.uploadedBytes} peersMax=${s.peersMax} fatal=${s.fatalErrors.length}\n`
      : 'no stats\n'))
    if (s && (s.fatalErrors.length || !s.p2pBytes)) process.stderr.write(`  log: ${s.log.join('\n       ')}\n`)
  }
  report.ok = true
  process.stderr.write(`e2e-run: pages done at ${((Date.now() - started) / 1000).toFixed(1)} s\n`)
  clearTimeout(watchdog)
  await cleanup()
  finish(0)
} catch (err) {
  clearTimeout(watchdog)
  report.error = String(err && err.stack ? err.stack : err)
  await cleanup()
  finish(1)
}
