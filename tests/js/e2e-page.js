// What every end-to-end test page reports to the Node driver (tests/js/e2e-run.mjs): one object,
// `globalThis.__e2e`, with the same fields whichever P2P engine the page runs, so the Rust tests
// compare p2p-media-loader pages and segswarm pages alike.

/** Creates the page's report object and publishes it as `globalThis.__e2e`. */
export function createStats (kind) {
  const stats = {
    kind,
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
    log: []
  }
  globalThis.__e2e = stats
  return stats
}

/** Records a line in the page's bounded log (the driver prints it on failure). */
export function note (stats, line) {
  if (stats.log.length < 200) stats.log.push(`${(performance.now() / 1000).toFixed(1)}s ${line}`)
}

/** Counts downloaded bytes by source (`"http"` or `"p2p"`). */
export function addBytes (stats, source, bytes) {
  if (source === 'p2p') stats.p2pBytes += bytes
  else stats.httpBytes += bytes
}

/** Tracks the set of connected peers and the largest it has been. */
export function peerConnected (stats, peerId) {
  stats.peerConnects += 1
  if (!stats.peers.includes(peerId)) stats.peers.push(peerId)
  stats.peersMax = Math.max(stats.peersMax, stats.peers.length)
  note(stats, `peer connected ${peerId}`)
}

/** Removes a peer from the connected set. */
export function peerClosed (stats, peerId) {
  stats.peers = stats.peers.filter((p) => p !== peerId)
  note(stats, `peer closed ${peerId}`)
}

/** Creates a muted, autoplaying video element in the page. */
export function createVideo () {
  const video = document.createElement('video')
  video.muted = true
  video.autoplay = true
  video.playsInline = true
  video.width = 320
  video.height = 180
  document.body.append(video)
  return video
}

/**
 * Follows an hls.js instance and its video element: playback time, stalls (`waiting`) and hls.js
 * errors (fatal ones separately), then loads `playlist` and starts playing.
 */
export function followPlayback (stats, Hls, hls, video, playlist) {
  hls.on(Hls.Events.ERROR, (_event, data) => {
    const text = `${data.type}/${data.details}${data.fatal ? ' (fatal)' : ''}`
    if (stats.hlsErrors.length < 50) stats.hlsErrors.push(text)
    if (data.fatal) stats.fatalErrors.push(text)
    note(stats, `hls error ${text}`)
  })
  video.addEventListener('timeupdate', () => { stats.currentTime = video.currentTime })
  video.addEventListener('playing', () => { stats.playing = true })
  video.addEventListener('waiting', () => { stats.waitingEvents += 1 })
  hls.attachMedia(video)
  hls.loadSource(playlist)
  video.play().catch((err) => note(stats, `play() refused: ${err && err.message}`))
}
