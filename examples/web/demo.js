// segswarm demo page: plays an HLS stream with hls.js and the segswarm wasm package, and charts,
// once a second, the bytes received so far from HTTP and from peers and the number of connected peers.
//
// Settings come from the query string (`?src=<playlist URL>&tracker=<ws URL>`) or, when absent,
// from /demo-config.json (written by serve.mjs). The figures are also published as
// `globalThis.__e2e` (the shape tests/js/e2e-page.js uses), which the screenshot test reads.
import Hls from './vendor/hls.mjs'
import { withSegswarm } from './pkg/segswarm.js'

const $ = (id) => document.getElementById(id)
const MIN_SLOTS = 60 // the chart spans at least this many seconds
const MAX_POINTS = 600 // and keeps at most this many (the oldest are dropped)

const stats = {
  kind: 'demo',
  httpBytes: 0,
  p2pBytes: 0,
  uploadedBytes: 0,
  peers: [],
  peersMax: 0,
  peerConnects: 0,
  segmentsHttp: 0,
  segmentsP2p: 0,
  segmentErrors: 0,
  hlsErrors: [],
  fatalErrors: [],
  currentTime: 0,
  waitingEvents: 0,
  playing: false,
  log: [],
  chart: [] // one point a second: bytes received so far { http, p2p } and peers connected
}
globalThis.__e2e = stats

function bytes (n) {
  if (n < 1024) return `${n} B`
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${(n / 1024 / 1024).toFixed(2)} MiB`
}

async function settings () {
  const q = new URLSearchParams(location.search)
  if (q.get('src') && q.get('tracker')) return { playlist: q.get('src'), trackers: [q.get('tracker')] }
  const res = await fetch('demo-config.json', { cache: 'no-store' })
  if (!res.ok) throw new Error(`demo-config.json: HTTP ${res.status} (or give ?src=…&tracker=…)`)
  return res.json()
}

function draw () {
  const canvas = $('chart')
  const ctx = canvas.getContext('2d')
  const { width, height } = canvas
  const pad = { left: 70, right: 64, top: 10, bottom: 20 }
  const w = width - pad.left - pad.right
  const h = height - pad.top - pad.bottom
  ctx.clearRect(0, 0, width, height)
  const points = stats.chart
  const slots = Math.max(MIN_SLOTS, points.length)
  const last = points[points.length - 1]
  const maxBytes = Math.max(1, last ? last.http + last.p2p : 0)
  const maxPeers = Math.max(2, ...points.map((p) => p.peers))
  // Axes and labels.
  ctx.fillStyle = '#6b7280'
  ctx.font = '11px system-ui, sans-serif'
  ctx.fillText(bytes(maxBytes), 4, pad.top + 10)
  ctx.fillText('0', pad.left - 14, pad.top + h)
  ctx.fillText(`${maxPeers} peers`, width - pad.right + 4, pad.top + 10)
  ctx.fillText(`${points.length} s`, pad.left + w - 30, height - 4)
  ctx.fillText('0 s', pad.left, height - 4)
  ctx.strokeStyle = '#e5e7eb'
  ctx.lineWidth = 1
  ctx.strokeRect(pad.left, pad.top, w, h)
  // Bytes received so far, one stacked bar a second: HTTP below, peers on top. Whole-pixel boxes,
  // so the colours stay exact (the screenshot test counts them).
  const bar = w / slots
  points.forEach((p, i) => {
    const x = Math.round(pad.left + i * bar)
    const bw = Math.max(1, Math.round(pad.left + (i + 1) * bar) - x)
    const hh = Math.round((p.http / maxBytes) * h)
    const hp = Math.round((p.p2p / maxBytes) * h)
    ctx.fillStyle = canvas.dataset.httpColor
    ctx.fillRect(x, pad.top + h - hh, bw, hh)
    ctx.fillStyle = canvas.dataset.p2pColor
    ctx.fillRect(x, pad.top + h - hh - hp, bw, hp)
  })
  // Peers connected: a step line on the right axis.
  ctx.strokeStyle = canvas.dataset.peersColor
  ctx.lineWidth = 2
  ctx.beginPath()
  points.forEach((p, i) => {
    const x = pad.left + i * bar
    const y = pad.top + h - (p.peers / maxPeers) * (h - 2) - 1
    if (i === 0) ctx.moveTo(x, y)
    else ctx.lineTo(x, y)
    ctx.lineTo(x + bar, y)
  })
  ctx.stroke()
}

function render () {
  $('http').textContent = bytes(stats.httpBytes)
  $('p2p').textContent = bytes(stats.p2pBytes)
  const total = stats.httpBytes + stats.p2pBytes
  $('share').textContent = `${total ? ((100 * stats.p2pBytes) / total).toFixed(1) : '0'} %`
  $('up').textContent = bytes(stats.uploadedBytes)
  $('peers').textContent = String(stats.peers.length)
  $('time').textContent = `${stats.currentTime.toFixed(1)} s`
}

async function main () {
  const { playlist, trackers } = await settings()
  $('status').textContent = `playing ${playlist} with trackers ${trackers.join(', ')}`
  if (!Hls.isSupported()) throw new Error('this browser has no Media Source Extensions')
  const P2PHls = withSegswarm(Hls, { trackers, rtcConfig: { iceServers: [] } })
  const hls = new P2PHls()
  hls.p2p.on('bytes', ({ source, bytes: n }) => {
    if (source === 'upload') {
      stats.uploadedBytes += n
      return
    }
    if (source === 'p2p') stats.p2pBytes += n
    else stats.httpBytes += n
  })
  hls.p2p.on('peerConnect', ({ peer, stream }) => {
    const id = `${stream}#${peer}`
    stats.peerConnects += 1
    if (!stats.peers.includes(id)) stats.peers.push(id)
    stats.peersMax = Math.max(stats.peersMax, stats.peers.length)
  })
  hls.p2p.on('peerClose', ({ peer, stream }) => {
    const id = `${stream}#${peer}`
    stats.peers = stats.peers.filter((p) => p !== id)
  })
  hls.p2p.on('segmentLoaded', ({ source }) => {
    if (source === 'peer') stats.segmentsP2p += 1
    else if (source === 'http') stats.segmentsHttp += 1
  })
  hls.p2p.on('segmentFailed', () => { stats.segmentErrors += 1 })
  hls.on(Hls.Events.ERROR, (_e, data) => {
    const text = `${data.type}/${data.details}${data.fatal ? ' (fatal)' : ''}`
    if (stats.hlsErrors.length < 50) stats.hlsErrors.push(text)
    if (data.fatal) {
      stats.fatalErrors.push(text)
      $('status').textContent = `hls.js fatal error: ${text}`
    }
  })
  const video = $('video')
  video.addEventListener('timeupdate', () => { stats.currentTime = video.currentTime })
  video.addEventListener('playing', () => { stats.playing = true })
  video.addEventListener('waiting', () => { stats.waitingEvents += 1 })
  hls.attachMedia(video)
  hls.loadSource(playlist)
  video.play().catch(() => { $('status').textContent += ' (press play)' })
  setInterval(() => {
    stats.chart.push({ http: stats.httpBytes, p2p: stats.p2pBytes, peers: stats.peers.length })
    if (stats.chart.length > MAX_POINTS) stats.chart.shift()
    render()
    draw()
  }, 1000)
  draw()
}

main().catch((err) => {
  stats.fatalErrors.push(String(err && err.message))
  $('status').textContent = `error: ${err && err.message}`
})
