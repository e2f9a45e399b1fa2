// Browser bundle entry (bundled by e2e-run.mjs with esbuild as an ES module): an hls.js player with
// the segswarm wasm package (wasm-peer/pkg, served by the driver at /pkg/ and left out of the bundle).
// `startSegswarm` plays a playlist through the given trackers and fills `globalThis.__e2e`
// (see e2e-page.js) from the package's events.
import Hls from 'hls.js'
import { withSegswarm } from '/pkg/segswarm.js'

import { addBytes, createStats, createVideo, followPlayback, note, peerClosed, peerConnected } from './e2e-page.js'

globalThis.startSegswarm = function startSegswarm ({ playlist, trackers, swarmId, segswarm = {}, hls: hlsConfig = {} }) {
  const stats = createStats('segswarm')
  if (!Hls.isSupported()) {
    stats.fatalErrors.push('hls.js: Media Source Extensions not supported')
    return
  }
  const P2PHls = withSegswarm(Hls, {
    trackers,
    // Loopback only: no STUN server; host candidates are enough.
    rtcConfig: { iceServers: [] },
    ...(swarmId ? { swarmId } : {}),
    ...segswarm
  })
  const hls = new P2PHls(hlsConfig)
  const p2p = hls.p2p
  p2p.on('bytes', ({ source, bytes }) => {
    if (source === 'upload') stats.uploadedBytes += bytes
    else addBytes(stats, source, bytes)
  })
  p2p.on('peerConnect', ({ peer, stream }) => peerConnected(stats, `${stream}#${peer}`))
  p2p.on('peerClose', ({ peer, stream }) => peerClosed(stats, `${stream}#${peer}`))
  p2p.on('segmentLoaded', ({ source, id }) => {
    if (source === 'peer') stats.segmentsP2p += 1
    else if (source === 'http') stats.segmentsHttp += 1
    note(stats, `segment ${id} from ${source}`)
  })
  p2p.on('segmentFailed', ({ id, reason }) => {
    stats.segmentErrors += 1
    note(stats, `segment ${id} failed: ${reason}`)
  })
  p2p.on('trackerConnect', ({ url }) => note(stats, `tracker connected ${url}`))
  p2p.on('trackerDisconnect', ({ url }) => note(stats, `tracker disconnected ${url}`))
  const video = createVideo()
  followPlayback(stats, Hls, hls, video, playlist)
  globalThis.__hls = hls
}
