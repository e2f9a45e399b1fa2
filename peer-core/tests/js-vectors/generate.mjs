// Writes segswarm-core's JavaScript-produced test vectors with the published npm packages
// p2p-media-loader-core 2.3.1, p2p-media-loader-hlsjs 2.3.1 and hls.js 1.6.15 (exact versions in
// package.json / package-lock.json).
//
// Regenerate (needs Node 20+ and npm; writes ../fixtures/*.json, which are committed so that
// `cargo test` needs no Node):
//
//     cd peer-core/tests/js-vectors
//     npm ci --ignore-scripts      # scripts off: bittorrent-tracker's optional native WebRTC
//                                  # module would try to compile, and nothing here needs it
//     node generate.mjs
//
// How the real code is reached: the packages' entry points cannot be imported in Node 20
// (p2p-media-loader-core's lib/index.js re-exports a named `debug` from the CommonJS `debug`
// package) and `exports` hides their module files, so this script imports the compiled module
// files of the published packages directly by path from node_modules/*/lib (the codec:
// lib/p2p/commands/*.js; identity: lib/utils/stream.js and lib/utils/peer.js; the hls.js glue:
// p2p-media-loader-hlsjs/lib/segment-manager.js). segment-manager.js imports
// `generateStreamShortId` from the "p2p-media-loader-core" entry; a module resolve hook
// (registered below) sends that one import to lib/utils/stream.js of the same package, where
// the entry point re-exports it from. Nothing is re-implemented here except two one-liners
// that are not exported, each quoted from its source: the swarm id fallback
// (`url.split("?")[0]`, core.ts setManifestResponseUrl) and `getStreamId`'s stream object shape.

import { register } from "node:module";
import { writeFileSync, mkdirSync, readFileSync } from "node:fs";
import { DEFAULT_MAX, commands, limits, swarmInputs, masters } from "./shared.mjs";

const here = new URL("./", import.meta.url);
const lib = (pkg, file) => new URL(`./node_modules/${pkg}/lib/${file}`, here).href;

register(
  "data:text/javascript," +
    encodeURIComponent(`
      export async function resolve(specifier, context, next) {
        if (specifier === "p2p-media-loader-core") {
          return { url: ${JSON.stringify(lib("p2p-media-loader-core", "utils/stream.js"))}, shortCircuit: true };
        }
        return next(specifier, context);
      }`),
);

const Commands = await import(lib("p2p-media-loader-core", "p2p/commands/index.js"));
const StreamUtils = await import(lib("p2p-media-loader-core", "utils/stream.js"));
const PeerUtils = await import(lib("p2p-media-loader-core", "utils/peer.js"));
const { PACKAGE_VERSION } = await import(lib("p2p-media-loader-core", "utils/version.js"));
const { SegmentManager } = await import(lib("p2p-media-loader-hlsjs", "segment-manager.js"));
const { M3U8Parser } = await import("hls.js");

const pkgVersion = (name) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, here))).version;
const generator = {
  script: "peer-core/tests/js-vectors/generate.mjs",
  "p2p-media-loader-core": pkgVersion("p2p-media-loader-core"),
  "p2p-media-loader-hlsjs": pkgVersion("p2p-media-loader-hlsjs"),
  "hls.js": pkgVersion("hls.js"),
};

const fixtures = new URL("../fixtures/", here);
mkdirSync(fixtures, { recursive: true });
const write = (name, value) => {
  // JSON has no NaN: write it (and infinities) as strings.
  const special = (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? `${v}` : v);
  writeFileSync(new URL(name, fixtures), JSON.stringify(value, special, 1) + "\n");
  console.log(`wrote fixtures/${name}`);
};
const hex = (bytes) => Buffer.from(bytes).toString("hex");

// ---------------------------------------------------------------- wire commands

// The commands (shared.mjs), at each message limit.
const cases = [];
for (const maxMessage of limits) {
  for (const [name, command] of commands) {
    const parts = Commands.serializePeerCommand(command, maxMessage);
    // Small limits only for small commands (keeps the fixture small).
    if (maxMessage !== DEFAULT_MAX && parts.reduce((n, p) => n + p.length, 0) > 2000) continue;
    // Join and decode with the package's own receiving side.
    let decoded;
    const joiner = new Commands.BinaryCommandChunksJoiner((buf) => {
      decoded = Commands.deserializeCommand(buf);
    });
    for (const part of parts) {
      if (!Commands.isCommandChunk(part)) throw new Error(`not a command chunk: ${name}`);
      joiner.addCommandChunk(part);
    }
    // `decoded` is what the package's decoder returns; left out when equal to `command`.
    const same = JSON.stringify(decoded) === JSON.stringify(command);
    cases.push({ name, max_message: maxMessage, command, messages: parts.map(hex), ...(same ? {} : { decoded }) });
  }
}

// Messages that are (not) command chunks, as the package's isCommandChunk sees them.
const enc = (s) => new TextEncoder().encode(s);
const classify = [
  enc("cstr\x00cend"),
  enc("cstrcend"),
  enc("dstr\x01dend"),
  enc("cstr\x01dend"),
  enc("dstr\x01cend"),
  enc("cstr"),
  enc("cend"),
  enc("cstrcen"),
  enc("xstr\x00cend"),
  enc("cstr\x00xend"),
  new Uint8Array([0x47, 0x40, 0x11, 0x10]),
  new Uint8Array([]),
  enc("CSTR\x00CEND"),
].map((m) => ({ message: hex(m), is_command: Commands.isCommandChunk(m) }));

const bigint = (_k, v) => (typeof v === "number" && !Number.isSafeInteger(v) && Number.isInteger(v) ? `${BigInt(v)}` : v);
writeFileSync(
  new URL("wire_commands.json", fixtures),
  JSON.stringify({ generator, default_max_message: DEFAULT_MAX, cases, classify }, bigint) + "\n",
);
console.log("wrote fixtures/wire_commands.json");

// ---------------------------------------------------------------- segment upload

// What a peer writes to the data channel when it serves a segment: PeerProtocol.sendCommand
// (SegmentData), splitSegmentDataToChunksAndUploadAsync (raw chunks), sendCommand
// (SegmentDataSendingCompleted) — the sequence Peer.uploadSegmentData runs — through the
// package's own PeerProtocol on a recording fake connection. Raw chunks are recorded by length
// and sha1; segment bytes are `(i * 7 + size) & 0xff`.
const { PeerProtocol } = await import(lib("p2p-media-loader-core", "p2p/peer-protocol.js"));
const { createHash } = await import("node:crypto");
const uploads = [];
for (const [size, maxMessage] of [[0, DEFAULT_MAX], [1, DEFAULT_MAX], [65535, DEFAULT_MAX], [65536, DEFAULT_MAX], [200000, DEFAULT_MAX], [1000, 100], [999, 333]]) {
  const written = [];
  const connection = { on() {}, off() {}, write: (b) => (written.push(new Uint8Array(b)), true), idUtf8: "peer" };
  const events = { getEventDispatcher: () => () => {} };
  const handlers = { onCommandReceived() {}, onSegmentChunkReceived() {} };
  const protocol = new PeerProtocol(connection, { webRtcMaxMessageSize: maxMessage }, handlers, events);
  const data = new Uint8Array(size).map((_, i) => (i * 7 + size) & 0xff).buffer;
  const segment = 123456789;
  const request = 42;
  protocol.sendCommand({ c: 2, i: segment, r: request, s: data.byteLength });
  await protocol.splitSegmentDataToChunksAndUploadAsync(data, request);
  protocol.sendCommand({ c: 3, i: segment, r: request });
  uploads.push({
    size,
    max_message: maxMessage,
    segment,
    request,
    messages: written.map((m) =>
      Commands.isCommandChunk(m)
        ? { command: hex(m) }
        : { raw_len: m.length, raw_sha1: createHash("sha1").update(m).digest("hex") },
    ),
  });
}
write("segment_upload.json", { generator, uploads });

// ---------------------------------------------------------------- stream identity

const shortIdProps = [
  {},
  { bitrate: 0 },
  { bitrate: 1280000, codecs: "avc1.4d401f", width: 1280, height: 720 },
  { bitrate: 1280000, codecs: "avc1.66.30,mp4a.40.2", width: 1280, height: 720, frameRate: "30.000", videoRange: "sdr" },
  { bitrate: 5000000, codecs: " HVC1.2.4.L153.B0 , MP4A.40.2", width: 3840, height: 2160, frameRate: "59.940", videoRange: " pq " },
  { bitrate: 800000, codecs: "avc.100.41", width: 640, height: 360, frameRate: 25 },
  { bitrate: 800000, codecs: "avc1.066.30" },
  { bitrate: 800000, codecs: "avc1.77.x,avc1.4.5" },
  { bitrate: 0, codecs: "mp4a.40.2", language: "en-US", channels: "2", name: "English" },
  { bitrate: 0, codecs: "ec-3", language: "und", channels: "16/JOC", name: " Dolby Atmos " },
  { bitrate: 0, codecs: "opus", language: "FR", channels: 6, name: "Français" },
  { bitrate: 0, codecs: "mp4a.40.5", language: "de", channels: "6/JOC", name: "" },
  { bitrate: 64000, frameRate: "not a number" },
  { bitrate: 64000, frameRate: "23.976" },
  { bitrate: 64000, frameRate: "0" },
  { bitrate: 64000, frameRate: "1e1" },
  { bitrate: Number.NaN },
  { bitrate: 64000, width: 0, height: 0 },
  { bitrate: 64000, codecs: "" , name: null, language: null, channels: null, frameRate: null, videoRange: null },
].map((props) => ({ props, short_id: StreamUtils.generateStreamShortId(props) }));

const swarms = [];
for (const input of swarmInputs) {
  // core.ts: setManifestResponseUrl(url) { this.manifestResponseUrl = url.split("?")[0]; }
  // hybrid-loader.ts: const swarmId = this.config.swarmId ?? this.streamManifestUrl;
  const swarmId = input.swarm_id ?? input.manifest_url.split("?")[0];
  for (const type of ["main", "secondary"]) {
    for (const { short_id } of shortIdProps.slice(2, 4)) {
      // Stream objects carry `type` and `index` (the short id): getStreamId = `${type}-${index}`.
      const streamSwarmId = StreamUtils.getStreamSwarmId(swarmId, { type, index: short_id });
      swarms.push({
        ...input,
        type,
        short_id,
        stream_swarm_id: streamSwarmId,
        info_hash: PeerUtils.getStreamHash(streamSwarmId),
      });
    }
  }
}

// Multivariant playlists through hls.js's parser and p2p-media-loader-hlsjs's SegmentManager.

const hlsStreams = [];
for (const master of masters) {
  const parsed = M3U8Parser.parseMasterPlaylist(master.text, master.manifest_url);
  if (parsed.playlistParsingError) throw parsed.playlistParsingError;
  const media = M3U8Parser.parseMasterPlaylistMedia(master.text, master.manifest_url, parsed);
  const levels = parsed.levels;
  const audioTracks = media.AUDIO ?? [];
  // hls.js playlist-loader handleMasterPlaylist: the embedded main audio track it adds.
  if (audioTracks.length && !audioTracks.some((t) => !t.url) && levels[0].audioCodec && !levels[0].attrs.AUDIO) {
    audioTracks.unshift({ type: "main", name: "main", groupId: "main", default: false, autoselect: false, forced: false, id: -1, attrs: {}, bitrate: 0, url: "" });
  }
  const added = [];
  const core = { addStreamIfNoneExists: (stream) => added.push(stream) };
  new SegmentManager(core).processMainManifest({ levels, audioTracks });
  const swarmId = master.manifest_url.split("?")[0];
  hlsStreams.push({
    name: master.name,
    manifest_url: master.manifest_url,
    text: master.text,
    streams: added.map((s) => {
      const streamSwarmId = StreamUtils.getStreamSwarmId(swarmId, s);
      return {
        type: s.type,
        url: s.runtimeId,
        short_id: s.index,
        stream_swarm_id: streamSwarmId,
        info_hash: PeerUtils.getStreamHash(streamSwarmId),
      };
    }),
  });
}

// Segment external ids: hls.js media playlist parse + SegmentManager.updatePlaylist.
const mediaPlaylists = [
  {
    name: "live sliding window",
    url: "https://cdn.example.com/live/720/index.m3u8",
    text: `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:4
#EXT-X-MEDIA-SEQUENCE:1234
#EXTINF:4.0,
seg1234.ts
#EXTINF:4.0,
seg1235.ts
#EXT-X-DISCONTINUITY
#EXTINF:4.0,
seg1236.ts
#EXTINF:3.5,
seg1237.ts
`,
  },
  {
    name: "vod",
    url: "https://cdn.example.com/vod/720/index.m3u8",
    text: `#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:6
#EXT-X-MEDIA-SEQUENCE:10
#EXT-X-PLAYLIST-TYPE:VOD
#EXTINF:6.0,
a.ts
#EXTINF:6.0,
b.ts
#EXTINF:6.0,
c.ts
#EXT-X-ENDLIST
`,
  },
  {
    name: "live without media sequence",
    url: "https://cdn.example.com/live2/index.m3u8",
    text: `#EXTM3U
#EXT-X-TARGETDURATION:2
#EXTINF:2.0,
x0.ts
#EXTINF:2.0,
x1.ts
`,
  },
];
const segmentIds = mediaPlaylists.map((pl) => {
  const details = M3U8Parser.parseLevelPlaylist(pl.text, pl.url, 0, "main", 0, null);
  let newSegments = [];
  const core = {
    getStream: () => ({ segments: new Map() }),
    updateStream: (_url, segments) => (newSegments = segments),
  };
  new SegmentManager(core).updatePlaylist({ details });
  return {
    name: pl.name,
    text: pl.text,
    live: details.live,
    media_sequence: details.startSN,
    segments: newSegments.map((s) => ({ url: s.url, external_id: s.externalId })),
  };
});

// Peer ids: the prefix, and ids drawn with a scripted Math.random.
const peerIdRandoms = [0, 0.999999, 0.5, 0.25, 0.1, 0.9, 0.33, 0.66, 0.01, 0.75, 0.42, 0.58];
const realRandom = Math.random;
let next = 0;
Math.random = () => peerIdRandoms[next++ % peerIdRandoms.length];
const peerId = PeerUtils.generatePeerId(PeerUtils.TRACKER_CLIENT_VERSION_PREFIX);
Math.random = realRandom;

write("stream_ids.json", {
  generator,
  package_version: PACKAGE_VERSION,
  peer_id: {
    prefix: PeerUtils.TRACKER_CLIENT_VERSION_PREFIX,
    randoms: peerIdRandoms,
    id: peerId,
  },
  short_ids: shortIdProps,
  swarms,
  hls_masters: hlsStreams,
  segment_ids: segmentIds,
});
