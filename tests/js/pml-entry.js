// Browser bundle entry (bundled by e2e-run.mjs with esbuild): an hls.js player with the unmodified
// npm p2p-media-loader v2 (p2p-media-loader-hlsjs 2.3) engine. `startPml` plays a playlist through
// the given WebTorrent trackers and fills `globalThis.__e2e` (see e2e-page.js).
import Hls from 'hls.js'
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs'

import { startPmlPage } from './pml-page.js'

globalThis.startPml = function startPml (options) {
  startPmlPage({ Hls, HlsJsP2PEngine, kind: 'pml', options })
}
