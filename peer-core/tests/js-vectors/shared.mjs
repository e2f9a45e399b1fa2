// Inputs shared by the vector generators (generate.mjs for p2p-media-loader 2.3.1,
// pml-2.2/generate.mjs for 2.2.2), so both packages are run on the same commands and playlists.

export const DEFAULT_MAX = 64 * 1024 - 1; // core.ts default webRtcMaxMessageSize
const range = (from, count, step = 1) => Array.from({ length: count }, (_, i) => from + i * step);
const P60 = 2 ** 60;
const SAFE = Number.MAX_SAFE_INTEGER;

export const commands = [
  ["announcement, empty", { c: 0, l: [], p: [] }],
  ["announcement, loaded only", { c: 0, l: [0, 1, 2, 3] }],
  ["announcement, loading only", { c: 0, p: [7] }],
  ["announcement, live window", { c: 0, l: range(123456, 15), p: [123471, 123472] }],
  ["announcement, groups across 256 boundaries", { c: 0, l: [250, 255, 256, 257, 511, 512, 1000, 3, 70000], p: [65535, 65536] }],
  ["announcement, duplicates and order", { c: 0, l: [5, 300, 5, 1, 301], p: [] }],
  ["announcement, negative ids", { c: 0, l: [-1, -2, -255, -256, -257, -70000], p: [-5] }],
  ["announcement, large ids", { c: 0, l: [P60, P60 + 1, -P60, SAFE, -SAFE, 2 ** 32, 2 ** 31 - 1], p: [2 ** 53 - 2] }],
  ["announcement, 255 members in one group", { c: 0, l: range(256, 255) }],
  // > 65527 payload bytes: split into parts at the default limit.
  ["announcement, 255 full groups (multi-part)", { c: 0, l: range(0, 255 * 256).filter((i) => i % 256 < 255), p: range(1 << 20, 40, 3) }],
  ["announcement, 255 sparse groups", { c: 0, l: range(7, 255, 256), p: range(-1000, 255, 1024) }],
  ["request", { c: 1, i: 1234, r: 56 }],
  ["request, byte offset", { c: 1, i: 1234, r: 56, b: 65535 }],
  ["request, zero byte offset omitted", { c: 1, i: 0, r: 0, b: 0 }],
  ["request, large values", { c: 1, i: P60, r: 999, b: 2 ** 40 + 17 }],
  ["request, negative ids", { c: 1, i: -1, r: -128, b: 1 }],
  ["segment data", { c: 2, i: 17, r: 3, s: 1234567 }],
  ["segment data, empty", { c: 2, i: 0, r: 0, s: 0 }],
  ["segment data, large", { c: 2, i: SAFE, r: 127, s: 2 ** 33 }],
  ["sending completed", { c: 3, i: 17, r: 3 }],
  ["sending completed, boundaries", { c: 3, i: 127, r: 128 }],
  ["absent", { c: 4, i: 255, r: 256 }],
  ["absent, negative", { c: 4, i: -127, r: -129 }],
  ["cancel", { c: 5, i: 65535, r: 65536 }],
  ["cancel, large", { c: 5, i: -SAFE, r: P60 }],
];

// The same commands again with small message limits, to exercise the multi-part rule.
export const limits = [DEFAULT_MAX, 100, 33, 16, 12];

// Swarm ids and manifest URLs the identity vectors are derived from.
export const swarmInputs = [
  { manifest_url: "https://cdn.example.com/live/stream.m3u8" },
  { manifest_url: "https://cdn.example.com/live/stream.m3u8?token=abc&x=1" },
  { manifest_url: "https://cdn.example.com/vod/a b/ünï.m3u8?x" },
  { manifest_url: "http://127.0.0.1:8080/hls/index.m3u8#frag" },
  { manifest_url: "https://cdn.example.com/live/stream.m3u8?token=1", swarm_id: "my-swarm" },
  { manifest_url: "https://x", swarm_id: "" },
  { manifest_url: "https://peertube.example/static/streaming-playlists/hls/123/master.m3u8", swarm_id: "peertube-123" },
];

// Multivariant playlists, parsed by hls.js and registered by each package's hls.js glue.
export const masters = [
  {
    name: "video variants with alternative audio",
    manifest_url: "https://cdn.example.com/vod/master.m3u8?sig=1",
    text: `#EXTM3U
#EXT-X-VERSION:6
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="en",NAME="English",DEFAULT=YES,AUTOSELECT=YES,CHANNELS="2",URI="audio/en/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="aac",LANGUAGE="fr-CA",NAME="Français",CHANNELS="6/JOC",URI="audio/fr/index.m3u8"
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="ec3",LANGUAGE="und",CHANNELS="16/JOC",URI="audio/atmos/index.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=2149280,AVERAGE-BANDWIDTH=2000000,CODECS="avc1.64001f,mp4a.40.2",RESOLUTION=1280x720,FRAME-RATE=30.000,VIDEO-RANGE=SDR,AUDIO="aac"
video/720/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=6221600,CODECS="hvc1.2.4.L123.B0,ec-3",RESOLUTION=1920x1080,FRAME-RATE=59.940,VIDEO-RANGE=PQ,AUDIO="ec3"
video/1080/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=640000,CODECS="avc1.66.30,mp4a.40.2",RESOLUTION=640x360,AUDIO="aac"
video/360/index.m3u8
`,
  },
  {
    name: "muxed variants, no audio groups",
    manifest_url: "http://127.0.0.1:8080/live/master.m3u8",
    text: `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=800000,RESOLUTION=640x360,CODECS="avc1.4d401e,mp4a.40.2"
360p.m3u8

#EXT-X-STREAM-INF:BANDWIDTH=1400000,RESOLUTION=842x480,CODECS="avc1.4d401f,mp4a.40.2"
# a comment line between the tag and the URI
480p.m3u8
#EXT-X-STREAM-INF:AVERAGE-BANDWIDTH=2800000,RESOLUTION=1280x720
720p.m3u8
`,
  },
  {
    name: "zero bandwidth means missing metadata, unknown codecs left out",
    manifest_url: "https://e.example/p/master.m3u8",
    text: `#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=0,CODECS="avc1.64001f",RESOLUTION=1920x1080,FRAME-RATE=25
a.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=300000,CODECS="xyz1.1,avc1.42e01e",RESOLUTION=416x234,FRAME-RATE=15.0
b.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=0
c.m3u8
`,
  },
  {
    name: "muxed first variant with separate audio renditions adds an embedded main track",
    manifest_url: "https://e.example/q/master.m3u8?a=b",
    text: `#EXTM3U
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID="alt",NAME="Commentary",LANGUAGE="en",URI="commentary.m3u8"
#EXT-X-STREAM-INF:BANDWIDTH=1000000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=960x540
main.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2000000,CODECS="avc1.4d401f,mp4a.40.2",RESOLUTION=1280x720,AUDIO="alt"
alt.m3u8
`,
  },
];
