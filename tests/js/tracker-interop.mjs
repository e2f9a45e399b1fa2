// Interop test: two headless Chromium pages, each running the npm `bittorrent-tracker` client,
// announce the same info_hash to the WebSocket tracker given on the command line. They exchange a
// WebRTC offer and answer through that tracker, open a data channel and pass one message each way.
//
//   node tracker-interop.mjs ws://127.0.0.1:PORT [--timeout-ms N]   (or wss://, certificate not checked)
//   node tracker-interop.mjs --reference-server   (checks this script against the npm reference tracker)
//
// Prints one JSON object on stdout and exits 0 when both pages received the other's message,
// non-zero otherwise (including on timeout). Run it inside a network namespace with only `lo`
// (the Rust test does `unshare(CLONE_NEWNET)`), so no packet leaves the machine.

import { randomBytes } from 'node:crypto'
import http from 'node:http'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

import * as esbuild from 'esbuild'
import { chromium } from 'playwright-core'

const here = dirname(fileURLToPath(import.meta.url))
const args = process.argv.slice(2)
let trackerUrl = null
let useReference = false
let timeoutMs = 60_000
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--reference-server') useReference = true
  else if (args[i] === '--timeout-ms') timeoutMs = Number(args[++i])
  else trackerUrl = args[i]
}
if (!trackerUrl && !useReference) {
  console.error('usage: node tracker-interop.mjs <ws://host:port> | --reference-server')
  process.exit(2)
}

const result = {
  ok: false,
  tracker: null,
  info_hash: randomBytes(20).toString('hex'),
  peers: [],
  error: null,
  elapsed_ms: 0
}
const started = Date.now()
let browser = null
let pageServer = null
let referenceServer = null

function finish (code) {
  result.elapsed_ms = Date.now() - started
  process.stdout.write(JSON.stringify(result) + '\n')
  process.exit(code)
}

const watchdog = setTimeout(() => {
  result.error = result.error || `timed out after ${timeoutMs} ms`
  cleanup().finally(() => finish(3))
}, timeoutMs)

async function cleanup () {
  try { if (browser) await browser.close() } catch {}
  try { if (pageServer) pageServer.close() } catch {}
  try { if (referenceServer) referenceServer.close() } catch {}
}

// The code each page runs: one client, waits for one WebRTC peer through the tracker, sends a
// message on the data channel and waits for the other side's message.
async function runPeer ({ announce, infoHash, peerId, name }) {
  const log = []
  const client = new globalThis.TrackerClient({
    infoHash,
    peerId,
    announce: [announce],
    port: 6881,
    rtcConfig: { iceServers: [] }
  })
  const outcome = await new Promise((resolve) => {
    const state = { name, peerId, announced: false, peer_id: null, connected: false, sent: null, received: null, warnings: [], log }
    const timer = setTimeout(() => resolve({ ...state, error: 'peer timed out' }), 45_000)
    client.on('error', (err) => { clearTimeout(timer); resolve({ ...state, error: String(err && err.message) }) })
    client.on('warning', (err) => { state.warnings.push(String(err && err.message)) })
    client.on('update', (data) => {
      state.announced = true
      log.push(`update complete=${data.complete} incomplete=${data.incomplete}`)
    })
    client.on('peer', (peer) => {
      log.push(`peer ${peer.id}`)
      if (state.peer_id) return
      state.peer_id = peer.id
      peer.on('connect', () => {
        state.connected = true
        state.sent = `hello from ${name}`
        peer.send(state.sent)
      })
      peer.on('data', (data) => {
        state.received = new TextDecoder().decode(data)
        // Let our own message drain before resolving.
        setTimeout(() => { clearTimeout(timer); resolve(state) }, 200)
      })
      peer.on('error', (err) => log.push(`peer error ${err && err.message}`))
    })
    client.start()
  })
  // The client's own scrape of the swarm through the same tracker socket.
  outcome.scrape = await new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ error: 'scrape timed out' }), 5000)
    client.once('scrape', (data) => {
      clearTimeout(timer)
      resolve({ info_hash: data.infoHash, complete: data.complete, incomplete: data.incomplete })
    })
    client.scrape()
  })
  client.destroy()
  return outcome
}

try {
  if (useReference) {
    // The package exports only its index, which pulls in the Node WebRTC client; load the server alone.
    const { default: Server } = await import(pathToFileURL(join(here, 'node_modules/bittorrent-tracker/server.js')).href)
    referenceServer = new Server({ udp: false, http: false, ws: true, stats: false })
    await new Promise((resolve, reject) => {
      referenceServer.on('error', reject)
      referenceServer.listen(0, '127.0.0.1', resolve)
    })
    trackerUrl = `ws://127.0.0.1:${referenceServer.ws.address().port}`
  }
  result.tracker = trackerUrl

  const bundle = await esbuild.build({
    entryPoints: [join(here, 'browser-entry.js')],
    bundle: true,
    format: 'iife',
    platform: 'browser',
    target: 'chrome110',
    write: false,
    logLevel: 'silent',
    // What browserify-era packages expect from a browser build.
    define: { global: 'globalThis', 'process.browser': 'true', 'process.env.NODE_ENV': '"production"' }
  })
  const bundleJs = bundle.outputFiles[0].text
  const html = '<!doctype html><meta charset="utf-8"><title>segswarm interop</title><script src="/bundle.js"></script>'

  // The pages come from an HTTP origin on loopback, as a real site would serve them.
  pageServer = http.createServer((req, res) => {
    if (req.url === '/bundle.js') {
      res.writeHead(200, { 'content-type': 'text/javascript' })
      res.end(bundleJs)
    } else {
      res.writeHead(200, { 'content-type': 'text/html' })
      res.end(html)
    }
  })
  await new Promise((resolve) => pageServer.listen(0, '127.0.0.1', resolve))
  const pageUrl = `http://127.0.0.1:${pageServer.address().port}/`

  // Playwright gives the browser a fresh temporary profile of its own (it refuses --user-data-dir).
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--allow-loopback-in-peer-connection',
      '--disable-features=WebRtcHideLocalIpsWithMdns',
      // A wss:// tracker in these tests serves a certificate generated by the test itself.
      ...(trackerUrl.startsWith('wss:') ? ['--ignore-certificate-errors'] : [])
    ]
  })

  const pages = []
  for (const name of ['a', 'b']) {
    // Chromium lists host candidates (here: 127.0.0.1, with --allow-loopback-in-peer-connection) only
    // to pages holding a camera or microphone permission; without it, two browsers on a loopback-only
    // host have no candidate to offer each other. Nothing is captured: the permission is only granted.
    const context = await browser.newContext({ permissions: ['camera', 'microphone'] })
    const page = await context.newPage()
    page.on('console', (msg) => process.stderr.write(`[page ${name}] ${msg.text()}\n`))
    page.on('pageerror', (err) => process.stderr.write(`[page ${name} error] ${err.message}\n`))
    await page.goto(pageUrl)
    await page.waitForFunction(() => typeof globalThis.TrackerClient === 'function')
    pages.push({ name, page })
  }

  // Random peer ids, so bytes above 0x7f travel as binary-string characters through the tracker.
  const peerIds = pages.map(() => randomBytes(20).toString('hex'))
  const runs = pages.map(({ name, page }, i) =>
    page.evaluate(runPeer, { announce: trackerUrl, infoHash: result.info_hash, peerId: peerIds[i], name }))
  result.peers = await Promise.all(runs)

  const [a, b] = result.peers
  const problems = []
  for (const p of result.peers) {
    if (p.error) problems.push(`${p.name}: ${p.error}`)
    if (!p.announced) problems.push(`${p.name}: no announce response`)
    if (!p.connected) problems.push(`${p.name}: data channel did not open`)
  }
  for (const p of result.peers) {
    if (!p.scrape || p.scrape.info_hash !== result.info_hash || !(p.scrape.incomplete >= 1)) {
      problems.push(`${p.name}: scrape ${JSON.stringify(p.scrape)}`)
    }
  }
  if (a.received !== `hello from ${b.name}`) problems.push(`a received ${JSON.stringify(a.received)}`)
  if (b.received !== `hello from ${a.name}`) problems.push(`b received ${JSON.stringify(b.received)}`)
  if (a.peer_id !== b.peerId) problems.push(`a's peer is ${a.peer_id}, expected ${b.peerId}`)
  if (b.peer_id !== a.peerId) problems.push(`b's peer is ${b.peer_id}, expected ${a.peerId}`)
  result.ok = problems.length === 0
  if (!result.ok) result.error = problems.join('; ')
  clearTimeout(watchdog)
  await cleanup()
  finish(result.ok ? 0 : 1)
} catch (err) {
  clearTimeout(watchdog)
  result.error = String(err && err.stack ? err.stack : err)
  await cleanup()
  finish(1)
}
