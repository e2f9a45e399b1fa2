#!/usr/bin/env node
// One command for the segswarm web demo: makes a test stream with ffmpeg, starts segswarm-tracker,
// starts `segswarm seed` on the stream (the HTTP origin and a seeding peer in one process) and
// serves the demo page (index.html, demo.js, the wasm package and hls.js). Ctrl-C stops everything.
//
//   node examples/web/serve.mjs [--port 8080] [--host 127.0.0.1] [--live] [--seconds 120]
//                               [--no-seeder] [--tracker ws://...] [--tracker-bin PATH] [--segswarm-bin PATH]
//
// Needs: ffmpeg; the binaries (`cargo build -p segswarm-tracker -p segswarm`, found in
// $CARGO_TARGET_DIR or target/, debug then release); the wasm package (wasm-peer/build-pkg.sh);
// hls.js from `npm ci` in tests/js. The tracker listens on port+1, the origin on port+2. With
// --tracker URL an already running tracker is used instead. With
// --no-seeder this script serves the stream itself at /media/ and no seeder runs. --live writes a
// live stream in real time (2 s segments, sliding playlist); the default is a VOD of --seconds.
// When ready it prints one JSON line on stdout: { page, tracker, playlist, seeder }.

import { spawn, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { dirname, join, resolve as resolvePath } from 'node:path'
import { fileURLToPath } from 'node:url'
import { serveFile } from './static.mjs'

const here = dirname(fileURLToPath(import.meta.url))
const repo = resolvePath(here, '..', '..')

const opts = { port: 8080, host: '127.0.0.1', live: false, seconds: 120, seeder: true }
const argv = process.argv.slice(2)
for (let i = 0; i < argv.length; i++) {
  const a = argv[i]
  if (a === '--port') opts.port = Number(argv[++i])
  else if (a === '--host') opts.host = argv[++i]
  else if (a === '--live') opts.live = true
  else if (a === '--seconds') opts.seconds = Number(argv[++i])
  else if (a === '--no-seeder') opts.seeder = false
  else if (a === '--tracker') opts.tracker = argv[++i]
  else if (a === '--tracker-bin') opts.trackerBin = argv[++i]
  else if (a === '--segswarm-bin') opts.segswarmBin = argv[++i]
  else {
    console.error(`serve.mjs: unknown argument ${a} (see the comment at the top of examples/web/serve.mjs)`)
    process.exit(2)
  }
}

function findBinary (name) {
  const targets = [process.env.CARGO_TARGET_DIR, join(repo, 'target')].filter(Boolean)
  for (const t of targets) {
    for (const profile of ['debug', 'release']) {
      const p = join(t, profile, name)
      if (existsSync(p)) return p
    }
  }
  return null
}

const children = []
const workDir = mkdtempSync(join(tmpdir(), 'segswarm-demo-'))
const media = join(workDir, 'hls')
let stopping = false

function stop (code) {
  if (stopping) return
  stopping = true
  for (const c of children) {
    try { c.kill('SIGTERM') } catch {}
  }
  setTimeout(() => {
    for (const c of children) {
      try { c.kill('SIGKILL') } catch {}
    }
    rmSync(workDir, { recursive: true, force: true })
    process.exit(code)
  }, 500).unref()
}
process.on('SIGINT', () => stop(0))
process.on('SIGTERM', () => stop(0))

function start (name, cmd, args) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'inherit'] })
  child.on('exit', (code, signal) => {
    if (!stopping) {
      console.error(`serve.mjs: ${name} exited (${signal || code}); stopping`)
      stop(1)
    }
  })
  child.on('error', (err) => {
    console.error(`serve.mjs: cannot run ${name} (${cmd}): ${err.message}`)
    stop(1)
  })
  children.push(child)
  return child
}

async function waitForPort (port, ms) {
  const end = Date.now() + ms
  while (Date.now() < end) {
    const ok = await new Promise((resolve) => {
      const s = net.connect(port, opts.host, () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return true
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  return false
}

async function waitForSegments (playlist, n, ms) {
  const { readFileSync } = await import('node:fs')
  const end = Date.now() + ms
  while (Date.now() < end) {
    try {
      if ((readFileSync(playlist, 'utf8').match(/#EXTINF/g) || []).length >= n) return true
    } catch {}
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
  return false
}

function ffmpegArgs () {
  const args = ['-hide_banner', '-loglevel', 'error', '-nostdin', '-y']
  if (opts.live) args.push('-re')
  args.push('-f', 'lavfi', '-i', 'testsrc=size=640x360:rate=25', '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=48000')
  if (!opts.live) args.push('-t', String(opts.seconds))
  args.push('-c:v', 'libx264', '-preset', 'veryfast', '-pix_fmt', 'yuv420p', '-profile:v', 'main',
    '-g', '50', '-keyint_min', '50', '-sc_threshold', '0', '-b:v', '800k', '-maxrate', '800k', '-bufsize', '800k',
    '-c:a', 'aac', '-b:a', '64k', '-f', 'hls', '-hls_time', '2')
  if (opts.live) args.push('-hls_list_size', '10', '-hls_flags', 'delete_segments+temp_file')
  else args.push('-hls_playlist_type', 'vod', '-hls_list_size', '0')
  args.push('-hls_segment_filename', join(media, 'seg%05d.ts'), join(media, 'index.m3u8'))
  return args
}

try {
  const pkg = join(repo, 'wasm-peer', 'pkg')
  const hlsDist = join(repo, 'tests', 'js', 'node_modules', 'hls.js', 'dist')
  if (!existsSync(join(pkg, 'segswarm.js'))) throw new Error(`no wasm package in ${pkg}: run wasm-peer/build-pkg.sh`)
  if (!existsSync(join(hlsDist, 'hls.mjs'))) throw new Error(`no hls.js in ${hlsDist}: run npm ci in tests/js`)
  const trackerBin = opts.tracker ? null : opts.trackerBin || findBinary('segswarm-tracker')
  if (!opts.tracker && !trackerBin) throw new Error('segswarm-tracker not built: cargo build -p segswarm-tracker (or --tracker-bin)')
  const segswarmBin = opts.seeder && (opts.segswarmBin || findBinary('segswarm'))
  if (opts.seeder && !segswarmBin) throw new Error('segswarm not built: cargo build -p segswarm (or --segswarm-bin, or --no-seeder)')

  // The stream.
  const { mkdirSync } = await import('node:fs')
  mkdirSync(media, { recursive: true })
  if (opts.live) {
    start('ffmpeg', 'ffmpeg', ffmpegArgs())
    if (!await waitForSegments(join(media, 'index.m3u8'), 3, 30_000)) throw new Error('ffmpeg wrote no live playlist within 30 s')
  } else {
    const r = spawnSync('ffmpeg', ffmpegArgs(), { stdio: ['ignore', 'ignore', 'inherit'] })
    if (r.status !== 0) throw new Error(`ffmpeg failed (${r.error ? r.error.message : r.status})`)
  }

  // The tracker.
  let tracker = opts.tracker
  if (!tracker) {
    const trackerPort = opts.port + 1
    start('segswarm-tracker', trackerBin, ['--listen', `${opts.host}:${trackerPort}`, '--log-level', 'warn'])
    if (!await waitForPort(trackerPort, 15_000)) throw new Error('segswarm-tracker did not start listening')
    tracker = `ws://${opts.host}:${trackerPort}`
  }

  // The origin and seeder, or this script as the origin.
  let playlist = `http://${opts.host}:${opts.port}/media/index.m3u8`
  if (opts.seeder) {
    const originPort = opts.port + 2
    const loopback = opts.host.startsWith('127.') || opts.host === '::1' || opts.host === 'localhost'
    const args = ['seed', '--tracker', tracker, '--http', `${opts.host}:${originPort}`, '--stats-every', '0', '--udp', `${opts.host}:0`]
    if (loopback) args.push('--loopback-candidates')
    args.push(media)
    start('segswarm seed', segswarmBin, args)
    if (!await waitForPort(originPort, 20_000)) throw new Error('segswarm seed did not start its HTTP origin')
    playlist = `http://${opts.host}:${originPort}/index.m3u8`
  }

  // The page server.
  const config = JSON.stringify({ playlist, trackers: [tracker] })
  const server = http.createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname
    if (path === '/' || path === '/index.html') serveFile(res, here, 'index.html')
    else if (path === '/demo.js') serveFile(res, here, 'demo.js')
    else if (path === '/demo-config.json') {
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' })
      res.end(config)
    } else if (path.startsWith('/pkg/')) serveFile(res, pkg, path.slice(5))
    else if (path === '/vendor/hls.mjs') serveFile(res, hlsDist, 'hls.mjs')
    else if (!opts.seeder && path.startsWith('/media/')) serveFile(res, media, path.slice(7), req)
    else {
      res.writeHead(404)
      res.end()
    }
  })
  await new Promise((resolve, reject) => {
    server.on('error', reject)
    server.listen(opts.port, opts.host, resolve)
  })
  const page = `http://${opts.host}:${opts.port}/`
  process.stdout.write(JSON.stringify({ page, tracker, playlist, seeder: opts.seeder }) + '\n')
  console.error(`segswarm demo: open ${page} (tracker ${tracker}, stream ${playlist}${opts.seeder ? ', seeded by segswarm seed' : ''}); Ctrl-C stops`)
} catch (err) {
  console.error(`serve.mjs: ${err && err.message}`)
  stop(1)
}
