// Browser bundle entry (bundled by e2e-run.mjs with esbuild): an hls.js player with the unmodified
// npm p2p-media-loader v2 (p2p-media-loader-hlsjs 2.3) engine. `startPml` plays a playlist through
// the given WebTorrent trackers and fills `globalThis.__e2e` (see e2e-page.js).
import Hls from 'hls.js'
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs'

import { addBytes, createStats, createVideo, followPlayback, note, peerClosed, peerConnected } from './e2e-page.js'

globalThis.startPml = function startPml ({ playlist, trackers, swarmId, core = {}, hls: hlsConfig = {} }) {
  const stats = createStats('pml')
  if (!Hls.isSupported()) {
    stats.fatalErrors.push('hls.js: Media Source Extensions not supported')
    return
  }
  const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls)
  const hls = new HlsWithP2P({
    ...hlsConfig,
    p2p: {
      core: {
        announceTrackers: trackers,
        // Loopback only: no STUN server; host candidates are enough.
        rtcConfig: { iceServers: [] },
        ...(swarmId ? { swarmId } : {}),
        ...core
      },
      onHlsJsCreated (created) {
        const engine = created.p2pEngine
        engine.addEventListener('onChunkDownloaded', (bytes, source) => addBytes(stats, source, bytes))
        engine.addEventListener('onChunkUploaded', (bytes) => { stats.uploadedBytes += bytes })
        engine.addEventListener('onPeerConnect', ({ peerId }) => peerConnected(stats, peerId))
        engine.addEventListener('onPeerClose', ({ peerId }) => peerClosed(stats, peerId))
        engine.addEventListener('onSegmentLoaded', ({ downloadSource }) => {
          if (downloadSource === 'p2p') stats.segmentsP2p += 1
          else stats.segmentsHttp += 1
        })
        engine.addEventListener('onSegmentError', ({ error, downloadSource }) => {
          stats.segmentErrors += 1
          note(stats, `segment error (${downloadSource}): ${error && error.type}`)
        })
        engine.addEventListener('onTrackerError', ({ error }) => note(stats, `tracker error ${error}`))
        engine.addEventListener('onTrackerWarning', ({ warning }) => note(stats, `tracker warning ${warning}`))
      }
    }
  })
  const video = createVideo()
  followPlayback(stats, Hls, hls, video, playlist)
  globalThis.__hls = hls
}
