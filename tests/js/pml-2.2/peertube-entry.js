// Browser bundle entry (bundled by ../e2e-run.mjs with esbuild): the P2P stack of PeerTube 7.1 to
// 8.x players, hls.js 1.6 with the unmodified npm p2p-media-loader 2.2.2 (installed in this
// directory), configured as PeerTube's `hls-options-builder.ts` configures it: `swarmId` = the
// master playlist URL, the instance's WebSocket trackers, `highDemandTimeWindow` 15 s for a VOD
// and 4 s live, `segmentMemoryStorageLimit` 1024, hls.js `capLevelToPlayerSize` and
// `liveSyncDurationCount` 5, and every P2P segment checked against the video's
// `segments-sha256.json` (keyed by file name and `start-end` byte range, as PeerTube's
// `segment-validator.ts` reads it). Unlike PeerTube 7.1 to 8.0.1's validator, this one refuses a
// segment whose hash does not match, and counts it (`stats.validation`).
import Hls from 'hls.js'
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs'

import { createStats, note } from '../e2e-page.js'
import { startPmlPage } from '../pml-page.js'

function hex (buffer) {
  return Array.from(new Uint8Array(buffer), (b) => b.toString(16).padStart(2, '0')).join('')
}

function makeValidator (segmentsSha256Url, stats) {
  let manifest = null
  const load = () => { manifest = fetch(segmentsSha256Url).then((r) => r.json()) }
  return async function validate (url, byteRange, data) {
    if (!manifest) load()
    const file = new URL(url).pathname.split('/').pop()
    let entry = (await manifest)[file]
    for (let retry = 0; !entry && retry < 10; retry++) {
      // A live segment newer than the manifest: PeerTube's validator reloads it.
      await new Promise((resolve) => setTimeout(resolve, 500))
      load()
      entry = (await manifest)[file]
    }
    const expected = typeof entry === 'string' ? entry : entry && byteRange && entry[`${byteRange.start}-${byteRange.end}`]
    const actual = hex(await crypto.subtle.digest('SHA-256', data))
    const ok = expected === actual
    if (ok) stats.validation.ok += 1
    else {
      stats.validation.refused += 1
      note(stats, `segment ${file} ${byteRange ? `${byteRange.start}-${byteRange.end}` : ''} refused: expected ${expected}, got ${actual}`)
    }
    return ok
  }
}

globalThis.startPml = function startPml (options) {
  const stats = createStats('pml-2.2')
  stats.validation = { ok: 0, refused: 0 }
  const validate = makeValidator(options.segmentsSha256Url, stats)
  const live = Boolean(options.live)
  startPmlPage({
    Hls,
    HlsJsP2PEngine,
    kind: 'pml-2.2',
    options,
    stats,
    core: {
      swarmId: options.playlist,
      validateP2PSegment: validate,
      validateHTTPSegment: validate,
      ...(live ? { highDemandTimeWindow: 4 } : { highDemandTimeWindow: 15, segmentMemoryStorageLimit: 1024 })
    },
    hls: { capLevelToPlayerSize: true, liveSyncDurationCount: 5 }
  })
}
