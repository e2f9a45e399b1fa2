// One hls.js player with a p2p-media-loader v2 engine, whichever version the calling entry
// bundles (pml-entry.js: 2.3 from this directory; pml-2.2/peertube-entry.js: 2.2 as PeerTube's
// player configures it). Fills `globalThis.__e2e` (see e2e-page.js).
import { addBytes, createStats, createVideo, followPlayback, note, peerClosed, peerConnected } from './e2e-page.js'

export function startPmlPage ({ Hls, HlsJsP2PEngine, kind, options, core = {}, hls: hlsConfig = {}, stats = createStats(kind) }) {
  const { playlist, trackers, swarmId } = options
  if (!Hls.isSupported()) {
    stats.fatalErrors.push('hls.js: Media Source Extensions not supported')
    return stats
  }
  const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls)
  const hls = new HlsWithP2P({
    ...hlsConfig,
    ...(options.hls || {}),
    p2p: {
      core: {
        announceTrackers: trackers,
        // Loopback only: no STUN server; host candidates are enough.
        rtcConfig: { iceServers: [] },
        ...(swarmId ? { swarmId } : {}),
        ...core,
        ...(options.core || {})
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
  return stats
}
