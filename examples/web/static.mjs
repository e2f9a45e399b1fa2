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

/**
 * Serves the file `rel` below `root` (never outside it), or answers 404. A single-range
 * `Range: bytes=a-b` / `bytes=a-` (`req` given) is answered 206 with those bytes (byte-range HLS:
 * PeerTube's fragmented MP4s), an unsatisfiable one 416. Returns the bytes sent.
 */
export function serveFile (res, root, rel, req) {
  const path = normalize(join(root, decodeURIComponent(rel)))
  if (!path.startsWith(root + '/') || !existsSync(path) || !statSync(path).isFile()) {
    res.writeHead(404, { 'access-control-allow-origin': '*' })
    res.end()
    return 0
  }
  const size = statSync(path).size
  const m = /^bytes=(\d+)-(\d*)$/.exec(req?.headers?.range ?? '')
  if (m) {
    const start = Number(m[1])
    const end = Math.min(m[2] === '' ? size - 1 : Number(m[2]), size - 1)
    if (start > end) {
      res.writeHead(416, { 'content-range': `bytes */${size}`, 'access-control-allow-origin': '*' })
      res.end()
      return 0
    }
    res.writeHead(206, {
      'content-type': TYPES[extname(path)] || 'application/octet-stream',
      'content-length': end - start + 1,
      'content-range': `bytes ${start}-${end}/${size}`,
      'accept-ranges': 'bytes',
      'access-control-allow-origin': '*',
      'access-control-expose-headers': 'content-range, content-length',
      'cache-control': 'no-store'
    })
    createReadStream(path, { start, end }).pipe(res)
    return end - start + 1
  }
  res.writeHead(200, {
    'content-type': TYPES[extname(path)] || 'application/octet-stream',
    'content-length': size,
    'access-control-allow-origin': '*',
    'cache-control': 'no-store'
  })
  createReadStream(path).pipe(res)
  return size
}
