// Static files for the demo server (serve.mjs) and the end-to-end test driver
// (tests/js/e2e-run.mjs): HLS, wasm and script content types, CORS, no caching, no path traversal.

import { createReadStream, existsSync, statSync } from 'node:fs'
import { extname, join, normalize } from 'node:path'

/** Content types by file extension; anything else is application/octet-stream. */
export const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript',
  '.mjs': 'text/javascript',
  '.wasm': 'application/wasm',
  '.json': 'application/json',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4'
}

/** Serves the file `rel` below `root` (never outside it), or answers 404. Returns the bytes sent. */
export function serveFile (res, root, rel) {
  const path = normalize(join(root, decodeURIComponent(rel)))
  if (!path.startsWith(root + '/') || !existsSync(path) || !statSync(path).isFile()) {
    res.writeHead(404, { 'access-control-allow-origin': '*' })
    res.end()
    return 0
  }
  const size = statSync(path).size
  res.writeHead(200, {
    'content-type': TYPES[extname(path)] || 'application/octet-stream',
    'content-length': size,
    'access-control-allow-origin': '*',
    'cache-control': 'no-store'
  })
  createReadStream(path).pipe(res)
  return size
}
