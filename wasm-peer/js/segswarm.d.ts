// Types of segswarm's hls.js glue (segswarm.js). The wasm exports are typed in segswarm_wasm.d.ts.

export {
  SegswarmEngine,
  infoHash,
  schemeStreamSwarmId,
  streamShortId,
  streamSwarmId,
  swarmFor,
  swarmIdFromManifestUrl,
  version,
} from "./segswarm_wasm.js";

/** Settings of segswarm for one Hls class. */
export interface SegswarmOptions {
  /** Tracker WebSocket URLs (`wss://...`); one is used at a time, the next when it fails. */
  trackers?: string[];
  /** WebRTC configuration; only `iceServers` is used. */
  rtcConfig?: { iceServers?: { urls: string | string[]; username?: string; credential?: string }[] };
  /** Swarm id shared by every page playing this content; default: the manifest URL without its query
   * (as p2p-media-loader). */
  swarmId?: string;
  /** How swarm ids and info hashes are derived, to share swarms with these players:
   * `"pml-2.3"` (p2p-media-loader 2.3, default), `"pml-2.2"` (p2p-media-loader 2.2, as in PeerTube
   * 7.1 to 8.0's player) or `"peertube"` (PeerTube's `pt-v2-<uuid>-...-<resolution>` ids; needs
   * `peertubeUuid`; a level's resolution is min(width, height)). */
  idScheme?: "pml-2.3" | "pml-2.2" | "peertube";
  /** The PeerTube video's uuid, for `idScheme: "peertube"`. */
  peertubeUuid?: string;
  /** URL of the SHA-256 segment manifest (PeerTube `segments-sha256.json`), or a function of the
   * manifest URL giving it. Segments that do not match are refused and their sender banned. */
  segmentsSha256Url?: string | ((manifestUrl: string) => string | undefined);
  /** Mirror base URLs holding the same files as the manifest's directory; tried when the origin fails. */
  mirrors?: string[];
  /** Download from peers but upload nothing. Default false. */
  consumeOnly?: boolean;
  /** Upload cap in bytes per second. Default unlimited. */
  uploadRateLimit?: number;
  /** Segment cache cap in bytes per swarm. Default 256 MiB. */
  cacheBytes?: number;
  /** Most peer connections per swarm. Default 20. */
  maxPeers?: number;
  /** Most swarms joined at once. One per stream type: when hls.js loads a fragment of another
   * quality level (or audio track), the previous level's swarm is left. Default 2 (video + audio). */
  maxSwarms?: number;
  /** A fragment the engine has not delivered within this time is loaded by hls.js's own loader.
   * Default 10000 ms. */
  loaderTimeoutMs?: number;
  /** Least time between two fetches of the SHA-256 manifest of a live stream. Default 2000 ms. */
  manifestRefreshMs?: number;
  /** Live: unless the hls.js config sets `liveSyncDuration` or `liveSyncDurationCount`, start 4
   * segments behind the live edge (hls.js: 3) and, as p2p-media-loader does, set hls.js's
   * `liveSyncDurationCount` to play as far behind as the playlist allows (at most 120 s), so that
   * new segments have time to pass between peers. Default true. */
  liveSyncAdjust?: boolean;
  /** Where the `.wasm` file is; default next to segswarm_wasm.js. */
  wasmUrl?: string | URL;
}

/** Bytes moved since the previous `bytes` event of this stream. */
export interface BytesEvent {
  type: "bytes";
  /** `http` and `p2p` are downloads, `upload` is sent to peers. */
  source: "http" | "p2p" | "upload";
  bytes: number;
  /** The stream swarm id. */
  stream: string;
}

/** A peer's data channel opened or a connected peer went away. */
export interface PeerEvent {
  type: "peerConnect" | "peerClose";
  /** A local handle of the connection (unique within the stream). */
  peer: number;
  stream: string;
}

/** A segment the player asked for was delivered. */
export interface SegmentLoadedEvent {
  type: "segmentLoaded";
  /** Segment id (media sequence for live, playlist index for VOD). */
  id: number;
  /** Where its bytes came from; `cache` when unknown (e.g. added with `addSegment`). */
  source: "cache" | "http" | "peer";
  /** Whether it was stored (prefetched) before hls.js asked for it. */
  cached: boolean;
  bytes: number;
  stream: string;
}

/** A segment the player asked for could not be loaded by the engine (hls.js's loader takes over). */
export interface SegmentFailedEvent {
  type: "segmentFailed";
  id: number;
  reason: string;
  stream: string;
}

/** The tracker socket opened or closed. */
export interface TrackerEvent {
  type: "trackerConnect" | "trackerDisconnect";
  url: string;
  stream: string;
}

/** Every event, by type. */
export interface SegswarmEvents {
  bytes: BytesEvent;
  peerConnect: PeerEvent;
  peerClose: PeerEvent;
  segmentLoaded: SegmentLoadedEvent;
  segmentFailed: SegmentFailedEvent;
  trackerConnect: TrackerEvent;
  trackerDisconnect: TrackerEvent;
}

/** Statistics of one engine (one swarm). */
export interface EngineStats {
  httpBytes: number;
  p2pBytes: number;
  uploadedBytes: number;
  segmentsHttp: number;
  segmentsP2p: number;
  segmentsDelivered: number;
  /** Peers connected now. */
  peers: number;
  /** Peers whose data channel ever opened. */
  peersConnected: number;
  stallsAvoided: number;
  hashMismatches: number;
  peersBanned: number;
  trackerConnected: boolean;
}

/** One swarm joined now. */
export interface ActiveSwarm {
  streamSwarmId: string;
  infoHash: string;
  peerId: string;
  live: boolean;
  stats: EngineStats;
}

/** The P2P side of one Hls instance (`hls.p2p`). */
export declare class SegswarmP2P {
  constructor(options?: SegswarmOptions);
  readonly options: Required<Omit<SegswarmOptions, "rtcConfig" | "swarmId" | "peertubeUuid" | "segmentsSha256Url" | "uploadRateLimit" | "cacheBytes" | "maxPeers" | "wasmUrl">> & SegswarmOptions;
  on<K extends keyof SegswarmEvents>(type: K, fn: (event: SegswarmEvents[K]) => void): this;
  off<K extends keyof SegswarmEvents>(type: K, fn: (event: SegswarmEvents[K]) => void): this;
  /** Byte totals since creation (all streams) and the peers connected now. */
  stats(): { httpBytes: number; p2pBytes: number; uploadedBytes: number; peers: number };
  /** The swarms joined now. */
  activeSwarms(): ActiveSwarm[];
  /** Wires this to an Hls instance (done by the class `withSegswarm` returns). */
  attach(hls: unknown): void;
  /** Leaves every swarm. */
  destroy(): void;
}

/** An Hls class (constructor) as hls.js exports it. */
export type HlsClass = abstract new (config?: any) => any;

/**
 * A subclass of `Hls` whose instances load media fragments through segswarm; `hls.p2p` is the
 * instance's {@link SegswarmP2P}. The user's hls.js config is kept (its `fLoader` is replaced).
 */
export declare function withSegswarm<H extends HlsClass>(
  Hls: H,
  options?: SegswarmOptions,
): H & (new (config?: any) => InstanceType<H> & { p2p: SegswarmP2P });

/** Loads the wasm module (done by `withSegswarm`); resolves to false if it cannot load. */
export declare function initSegswarm(wasmUrl?: string | URL): Promise<boolean>;

/** The fragment loader class installed as hls.js's `fLoader`. */
export declare function createFragmentLoader(p2p: SegswarmP2P, DefaultLoader: any): any;
