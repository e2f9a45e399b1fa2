// Starts the reference WebTorrent tracker (npm bittorrent-tracker, WebSocket only) on 127.0.0.1 with
// an ephemeral port, prints the port on stdout, and runs until stdin closes.
// Run with `node --input-type=module` from tests/js so that the package resolves.
// Info hashes whose hex form starts with "dead" are refused by the filter, to exercise failures.
import Server from 'bittorrent-tracker/server'

const server = new Server({
  udp: false,
  http: false,
  ws: true,
  stats: false,
  filter: (infoHash, params, cb) => {
    cb(infoHash.startsWith('dead') ? new Error('info hash not allowed here') : null)
  }
})
server.on('error', err => { console.error('tracker error', err.message) })
server.on('warning', () => {})
server.listen(0, '127.0.0.1', () => {
  console.log(String(server.ws.address().port))
})
process.stdin.resume()
process.stdin.on('end', () => { server.close(); process.exit(0) })
