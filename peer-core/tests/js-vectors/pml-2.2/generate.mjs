// Writes segswarm-core's `pml-2.2` test vectors with the published npm packages
// p2p-media-loader-core 2.2.2 and p2p-media-loader-hlsjs 2.2.2 (the line PeerTube 7.1 to 8.0
// ship) and hls.js 1.6.15; exact versions in package.json / package-lock.json of this directory.
//
// Regenerate (Node 20+ and npm; writes ../../fixtures/pml_2_2.json, committed so that
// `cargo test` needs no Node):
//
//     cd peer-core/tests/js-vectors/pml-2.2
//     npm ci --ignore-scripts
//     node generate.mjs
//
// As in ../generate.mjs, the packages' compiled module files are imported by path from
// node_modules/*/lib: the codec (lib/p2p/commands/*.js), identity (lib/utils/stream.js
// `getStreamSwarmId`, lib/utils/peer.js `getStreamHash` and `generatePeerId`) and the hls.js glue
// (p2p-media-loader-hlsjs/lib/segment-mananger.js, spelled so in 2.2.2). The commands, swarm ids
// and playlists are the ones ../generate.mjs runs through 2.3.1 (../shared.mjs). When
// ../node_modules holds 2.3.1 as well, every command is also serialized by 2.3.1 and the two
// byte sequences compared; the result is written as `wire_same_as_2_3_1`.

import { writeFileSync, readFileSync, existsSync } from "node:fs";
import { createHash } from "node:crypto";
import { DEFAULT_MAX, commands, limits, swarmInputs, masters } from "../shared.mjs";

const here = new URL("./", import.meta.url);
const lib = (pkg, file, base = here) => new URL(`./node_modules/${pkg}/lib/${file}`, base).href;

const Commands = await import(lib("p2p-media-loader-core", "p2p/commands/index.js"));
const StreamUtils = await import(lib("p2p-media-loader-core", "utils/stream.js"));
const PeerUtils = await import(lib("p2p-media-loader-core", "utils/peer.js"));
const { PACKAGE_VERSION } = await import(lib("p2p-media-loader-core", "utils/version.js"));
const { SegmentManager } = await import(lib("p2p-media-loader-hlsjs", "segment-mananger.js"));
const { M3U8Parser } = await import("hls.js");

const pkgVersion = (name, base = here) =>
  JSON.parse(readFileSync(new URL(`./node_modules/${name}/package.json`, base))).version;
const generator = {
  script: "peer-core/tests/js-vectors/pml-2.2/generate.mjs",
  "p2p-media-loader-core": pkgVersion("p2p-media-loader-core"),
  "p2p-media-loader-hlsjs": pkgVersion("p2p-media-loader-hlsjs"),
  "hls.js": pkgVersion("hls.js"),
};
const hex = (bytes) => Buffer.from(bytes).toString("hex");

// ---------------------------------------------------------------- wire commands

// 2.3.1, for the comparison, if ../node_modules has it.
const parent = new URL("../", here);
const newer = existsSync(new URL("./node_modules/p2p-media-loader-core/package.json", parent))
  ? {
      version: pkgVersion("p2p-media-loader-core", parent),
      Commands: await import(lib("p2p-media-loader-core", "p2p/commands/index.js", parent)),
    }
  : undefined;

const cases = [];
let compared = 0;
let differing = 0;
for (const maxMessage of limits) {
  for (const [name, command] of commands) {
    const parts = Commands.serializePeerCommand(command, maxMessage);
    if (maxMessage !== DEFAULT_MAX && parts.reduce((n, p) => n + p.length, 0) > 2000) continue;
    let decoded;
    const joiner = new Commands.BinaryCommandChunksJoiner((buf) => {
      decoded = Commands.deserializeCommand(buf);
    });
    for (const part of parts) {
      if (!Commands.isCommandChunk(part)) throw new Error(`not a command chunk: ${name}`);
      joiner.addCommandChunk(part);
    }
    if (newer) {
      const theirs = newer.Commands.serializePeerCommand(command, maxMessage).map(hex);
      compared += 1;
      if (JSON.stringify(theirs) !== JSON.stringify(parts.map(hex))) {
        differing += 1;
        console.log(`differs from ${newer.version}: ${name} (max ${maxMessage})`);
      }
    }
    const same = JSON.stringify(decoded) === JSON.stringify(command);
    // Long commands (the multi-part announcement) by each part's length and SHA-1, and without
    // the command itself (the same case of wire_commands.json has it: both come from
    // shared.mjs), to keep the fixture small; the rest byte for byte.
    const long = parts.reduce((n, p) => n + p.length, 0) > 4096;
    const body = long
      ? { message_sha1: parts.map((p) => createHash("sha1").update(p).digest("hex")), message_lens: parts.map((p) => p.length) }
      : { command, messages: parts.map(hex), ...(same ? {} : { decoded }) };
    cases.push({ name, max_message: maxMessage, ...body });
  }
}
if (newer) console.log(`wire: ${compared} serializations compared with ${newer.version}, ${differing} differ`);

// ---------------------------------------------------------------- stream identity

// 2.2 streams are `{type, index}`: index = position in hls.js's levels / audioTracks.
const swarms = [];
for (const input of swarmInputs) {
  // core.ts: setManifestResponseUrl(url) { this.manifestResponseUrl = url.split("?")[0]; }
  // hybrid-loader.ts: const swarmId = this.config.swarmId ?? this.streamManifestUrl;
  const swarmId = input.swarm_id ?? input.manifest_url.split("?")[0];
  for (const type of ["main", "secondary"]) {
    for (const index of [0, 1, 2, 10]) {
      const streamSwarmId = StreamUtils.getStreamSwarmId(swarmId, { type, index });
      swarms.push({ ...input, type, index, stream_swarm_id: streamSwarmId, info_hash: PeerUtils.getStreamHash(streamSwarmId) });
    }
  }
}
// PeerTube 7.1-8.0 players set swarmId = the master playlist URL.
for (const uuid of ["9c9de5e8-0a1e-484a-b099-e80766180a6d", "ünï cödé ✓"]) {
  const swarmId = `https://peertube.example/static/streaming-playlists/hls/${uuid}/${uuid}-master.m3u8`;
  const streamSwarmId = StreamUtils.getStreamSwarmId(swarmId, { type: "main", index: 0 });
  swarms.push({ manifest_url: swarmId, type: "main", index: 0, stream_swarm_id: streamSwarmId, info_hash: PeerUtils.getStreamHash(streamSwarmId) });
}

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
      return { type: s.type, url: s.runtimeId, index: s.index, stream_swarm_id: streamSwarmId, info_hash: PeerUtils.getStreamHash(streamSwarmId) };
    }),
  });
}

// Peer id: the prefix, and an id drawn with a scripted Math.random.
const peerIdRandoms = [0, 0.999999, 0.5, 0.25, 0.1, 0.9, 0.33, 0.66, 0.01, 0.75, 0.42, 0.58];
const realRandom = Math.random;
let next = 0;
Math.random = () => peerIdRandoms[next++ % peerIdRandoms.length];
const peerId = PeerUtils.generatePeerId(PeerUtils.TRACKER_CLIENT_VERSION_PREFIX);
Math.random = realRandom;

const bigint = (_k, v) => (typeof v === "number" && !Number.isSafeInteger(v) && Number.isInteger(v) ? `${BigInt(v)}` : v);
const out = {
  generator,
  package_version: PACKAGE_VERSION,
  ...(newer ? { wire_compared_with: newer.version, wire_same_as_2_3_1: differing === 0 } : {}),
  peer_id: { prefix: PeerUtils.TRACKER_CLIENT_VERSION_PREFIX, randoms: peerIdRandoms, id: peerId },
  swarms,
  hls_masters: hlsStreams,
  default_max_message: DEFAULT_MAX,
  wire_cases: cases,
};
writeFileSync(new URL("../../fixtures/pml_2_2.json", here), JSON.stringify(out, bigint) + "\n");
console.log("wrote fixtures/pml_2_2.json");
