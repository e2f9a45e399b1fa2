// segswarm for hls.js: gives an Hls class P2P segment delivery through the segswarm wasm engine.
//
//   import Hls from "hls.js";
//   import { withSegswarm } from "segswarm";
//   const P2PHls = withSegswarm(Hls, { trackers: ["wss://tracker.example/"] });
//   const hls = new P2PHls();           // any hls.js config
//   hls.p2p.on("bytes", (e) => ...);    // events, see segswarm.d.ts
//
// Swarm ids and segment ids are derived exactly as the players of the `idScheme` option derive
// them: p2p-media-loader 2.3 by default (stream short id from the level's attributes, "v2-" +
// swarm id + "-" + type + "-" + short id), "pml-2.2" as p2p-media-loader 2.2 (the level's or audio
// track's position instead of the short id, MD5 info hashes: PeerTube 7.1 to 8.0's player), or
// "peertube" ("pt-v2-" + peertubeUuid + "-" + type + "-default-" + resolution); segment id = media
// sequence number for live, playlist index for VOD. So both kinds of peers share swarms.
// P2P never stalls hls.js: the engine moves to HTTP whatever peers cannot deliver before playback
// reaches it, anything the engine cannot load goes to hls.js's own loader, and so does a request
// the engine has not answered within `loaderTimeoutMs`.

import init, {
  SegswarmEngine,
  infoHash,
  schemeStreamSwarmId,
  streamShortId,
  streamSwarmId,
  swarmFor,
  swarmIdFromManifestUrl,
  version,
} from "./segswarm_wasm.js";

export {
  SegswarmEngine,
  infoHash,
  schemeStreamSwarmId,
  streamShortId,
  streamSwarmId,
  swarmFor,
  swarmIdFromManifestUrl,
  version,
};

let wasmReady = null;
let wasmLoaded = false;

/** Loads the wasm module once (later calls return the same promise). Resolves to true on success. */
export function initSegswarm(wasmUrl) {
  if (!wasmReady) {
    const arg = wasmUrl ? { module_or_path: wasmUrl } : undefined;
    wasmReady = init(arg).then(
      () => {
        wasmLoaded = true;
        return true;
      },
      (e) => {
        console.warn("segswarm: wasm module failed to load; HTTP only", e);
        return false;
      },
    );
  }
  return wasmReady;
}

const DEFAULTS = {
  trackers: [],
  rtcConfig: undefined,
  swarmId: undefined,
  idScheme: "pml-2.3",
  peertubeUuid: undefined,
  segmentsSha256Url: undefined,
  mirrors: [],
  consumeOnly: false,
  uploadRateLimit: undefined,
  cacheBytes: undefined,
  maxPeers: undefined,
  maxSwarms: 2,
  loaderTimeoutMs: 10000,
  manifestRefreshMs: 2000,
  liveSyncAdjust: true,
  wasmUrl: undefined,
};

function dirOf(url) {
  const clean = url.split(/[?#]/)[0];
  return clean.slice(0, clean.lastIndexOf("/") + 1);
}

function runtimeId(url, rangeStart, rangeEnd) {
  if (rangeStart === undefined || rangeEnd === undefined || !(rangeEnd > rangeStart)) return url;
  return `${url}|${rangeStart}-${rangeEnd - 1}`;
}

/** The P2P side of one Hls instance: swarms (one engine per stream), events, totals. */
export class SegswarmP2P {
  constructor(options = {}) {
    this.options = { ...DEFAULTS, ...options };
    this.ready = initSegswarm(this.options.wasmUrl);
    this.listeners = new Map();
    this.totals = { httpBytes: 0, p2pBytes: 0, uploadedBytes: 0, peers: 0 };
    this.manifestUrl = undefined;
    // url of a level/track playlist -> { type, shortId }
    this.streams = new Map();
    // stream swarm id -> { swarmId, live, segments, bases, engine, lastUsed }
    this.swarms = new Map();
    // fragment runtime id -> { key, id }
    this.segments = new Map();
    this.wants = new Map();
    this.sha256 = undefined;
    this.sha256FetchedAt = 0;
    this.hls = undefined;
    this.media = undefined;
    this.onMediaTime = () => this.#updatePlayback();
    this.destroyed = false;
  }

  /** Adds an event listener: "bytes", "peerConnect", "peerClose", "segmentLoaded",
   * "segmentFailed", "trackerConnect", "trackerDisconnect". */
  on(type, fn) {
    if (!this.listeners.has(type)) this.listeners.set(type, new Set());
    this.listeners.get(type).add(fn);
    return this;
  }

  /** Removes an event listener. */
  off(type, fn) {
    this.listeners.get(type)?.delete(fn);
    return this;
  }

  #emit(event) {
    for (const fn of this.listeners.get(event.type) ?? []) {
      try {
        fn(event);
      } catch (e) {
        console.error("segswarm: event listener threw", e);
      }
    }
  }

  /** Byte totals since creation and the peers connected now. */
  stats() {
    let peers = 0;
    for (const s of this.swarms.values()) if (s.engine) peers += s.engine.stats().peers;
    return { ...this.totals, peers };
  }

  /** The swarms joined now: stream swarm id, info hash, peer id and engine statistics. */
  activeSwarms() {
    const out = [];
    for (const [streamSwarmId, s] of this.swarms) {
      if (!s.engine) continue;
      out.push({
        streamSwarmId,
        infoHash: s.engine.infoHash,
        peerId: s.engine.peerId,
        live: s.live,
        stats: s.engine.stats(),
      });
    }
    return out;
  }

  /** Wires this to an Hls instance (done by the class `withSegswarm` returns). */
  attach(hls) {
    this.hls = hls;
    hls.on("hlsManifestLoading", () => this.#reset());
    hls.on("hlsManifestLoaded", (_e, data) => this.#manifestLoaded(data));
    hls.on("hlsLevelUpdated", (_e, data) => this.#playlistUpdated(data, hls.levels?.[data.level]));
    hls.on("hlsAudioTrackLoaded", (_e, data) =>
      this.#playlistUpdated(data, hls.audioTracks?.[data.id]),
    );
    hls.on("hlsMediaAttached", (_e, data) => this.#attachMedia(data.media));
    hls.on("hlsMediaDetaching", () => this.#attachMedia(undefined));
    hls.on("hlsDestroying", () => this.destroy());
  }

  /** Leaves every swarm. */
  destroy() {
    this.destroyed = true;
    this.#attachMedia(undefined);
    this.#reset();
  }

  #reset() {
    for (const s of this.swarms.values()) this.#stopEngine(s);
    this.swarms.clear();
    this.streams.clear();
    this.segments.clear();
    this.wants.clear();
    this.sha256 = undefined;
    this.sha256FetchedAt = 0;
  }

  #attachMedia(media) {
    if (this.media) {
      for (const t of ["timeupdate", "seeking", "ratechange"]) {
        this.media.removeEventListener(t, this.onMediaTime);
      }
    }
    this.media = media;
    if (media) {
      for (const t of ["timeupdate", "seeking", "ratechange"]) {
        media.addEventListener(t, this.onMediaTime);
      }
    }
  }

  #updatePlayback() {
    const t = this.media?.currentTime;
    if (typeof t !== "number" || !Number.isFinite(t)) return;
    for (const s of this.swarms.values()) s.engine?.setPlayback(t);
  }

  // Runs `fn` now when the wasm module is loaded (hls.js asks for a fragment in the same tick
  // as it reports the playlist that lists it), else once it is.
  #whenReady(fn) {
    if (wasmLoaded) fn();
    else this.ready.then((ok) => ok && fn());
  }

  #manifestLoaded(data) {
    const nd = data.networkDetails;
    this.manifestUrl =
      (typeof XMLHttpRequest !== "undefined" && nd instanceof XMLHttpRequest && nd.responseURL) ||
      (typeof Response !== "undefined" && nd instanceof Response && nd.url) ||
      data.url;
    this.#whenReady(() => {
      // Each stream keeps what every id scheme needs: its short id (pml-2.3), its position among
      // the levels or audio tracks (pml-2.2), its PeerTube resolution (peertube).
      for (const [index, level] of (data.levels ?? []).entries()) {
        const b = level.maxBitrate ?? level.bitrate;
        const missing = b === 0;
        const shortId = streamShortId({
          bitrate: b,
          codecs: missing ? undefined : level.videoCodec,
          width: missing ? undefined : level.width,
          height: missing ? undefined : level.height,
          frameRate: missing ? undefined : level.attrs?.["FRAME-RATE"],
          videoRange: missing ? undefined : level.attrs?.["VIDEO-RANGE"],
        });
        const url = Array.isArray(level.url) ? level.url[0] : level.url;
        const resolution = Math.min(level.width || 0, level.height || 0);
        if (!this.streams.has(url)) this.streams.set(url, { type: "main", shortId, index, resolution });
      }
      for (const [index, track] of (data.audioTracks ?? []).entries()) {
        const shortId = streamShortId({
          bitrate: 0,
          codecs: track.audioCodec,
          language: track.lang,
          channels: track.channels,
          name: track.name,
        });
        const url = Array.isArray(track.url) ? track.url[0] : track.url;
        if (url && !this.streams.has(url)) this.streams.set(url, { type: "secondary", shortId, index });
      }
    });
  }

  #playlistUpdated(data, level) {
    this.#adjustLiveSync(data.details);
    this.#whenReady(() => {
      if (this.destroyed) return;
      const details = data.details;
      const levelUrl = level && (Array.isArray(level.url) ? level.url[0] : level.url);
      const stream = this.streams.get(details.url) ?? (levelUrl && this.streams.get(levelUrl));
      if (!stream || !this.manifestUrl) return;
      const o = this.options;
      let key;
      try {
        const swarm = swarmFor(o.idScheme, o.swarmId, o.peertubeUuid, this.manifestUrl);
        key = schemeStreamSwarmId(o.idScheme, swarm, stream);
      } catch (e) {
        // A bad idScheme, or "peertube" without peertubeUuid: no swarm, hls.js loads everything.
        if (!this.idSchemeWarned) console.warn("segswarm: no swarm joined:", e);
        this.idSchemeWarned = true;
        return;
      }
      const live = !!details.live;
      const fragments = details.fragments ?? [];
      const manifestDir = dirOf(this.manifestUrl);
      const playlistDir = dirOf(details.url);
      const base = fragments.every((f) => f.url.startsWith(manifestDir)) ? manifestDir : playlistDir;
      const segments = [];
      const urls = new Set();
      fragments.forEach((f, index) => {
        if (!f.url.startsWith(base)) return;
        // p2p-media-loader's ids: the media sequence number live, the playlist index in a VOD.
        const id = live ? f.sn : index;
        const segment = { id, path: f.url.slice(base.length), start: f.start, duration: f.duration };
        // A byte-range fragment (PeerTube's VOD: parts of one fMP4) is that part of its file:
        // the engine fetches it with a Range and shares it like any segment.
        const [rs, re] = f.byteRange ?? [];
        const ranged = rs !== undefined && re !== undefined && re > rs;
        if (ranged) {
          segment.rangeStart = rs;
          segment.rangeEnd = re;
        }
        segments.push(segment);
        const rid = ranged ? runtimeId(f.url, rs, re) : runtimeId(f.url);
        urls.add(rid);
        this.segments.set(rid, { key, id });
      });
      let swarm = this.swarms.get(key);
      if (!swarm) {
        swarm = {
          swarmId: key,
          type: stream.type,
          live,
          segments,
          bases: [base],
          engine: undefined,
          lastUsed: 0,
          urls,
        };
        this.swarms.set(key, swarm);
      }
      // Fragments that left the (live) playlist are forgotten.
      for (const u of swarm.urls) if (!urls.has(u)) this.segments.delete(u);
      swarm.urls = urls;
      swarm.live = live;
      swarm.segments = segments;
      swarm.bases = [base, ...(this.options.mirrors ?? [])];
      swarm.engine?.setPlaylist(segments);
      this.#refreshSha256(live);
    });
  }

  // Live: like p2p-media-loader, play as far behind the live edge as the playlist allows (at most
  // 120 s), unless the page set hls.js's liveSyncDuration(Count) itself. Segments then appear in
  // the playlist long enough before playback needs them for peers to pass them on; near the edge
  // every peer would have to fetch each new segment over HTTP.
  #adjustLiveSync(details) {
    const hls = this.hls;
    if (!this.options.liveSyncAdjust || !hls || !details?.live) return;
    const fragments = details.fragments ?? [];
    if (fragments.length <= 4 || fragments[0]?.type !== "main") return;
    const user = hls.userConfig ?? {};
    if (user.liveSyncDuration || user.liveSyncDurationCount) return;
    const target = details.targetduration;
    if (!(target > 0)) return;
    const count = Math.min(fragments.length - 1, Math.floor(120 / target));
    if (hls.config.liveSyncDurationCount !== count) hls.config.liveSyncDurationCount = count;
  }

  #sha256Url() {
    const u = this.options.segmentsSha256Url;
    if (typeof u === "function") return u(this.manifestUrl);
    return u;
  }

  #refreshSha256(live) {
    const url = this.#sha256Url();
    if (!url) return;
    const now = performance.now();
    if (this.sha256FetchedAt && (!live || now - this.sha256FetchedAt < this.options.manifestRefreshMs)) {
      return;
    }
    this.sha256FetchedAt = now;
    fetch(url)
      .then((r) => (r.ok ? r.text() : Promise.reject(new Error(`HTTP ${r.status}`))))
      .then((text) => {
        this.sha256 = text;
        for (const s of this.swarms.values()) this.#applySha256(s);
      })
      .catch((e) => console.warn("segswarm: segments SHA-256 manifest not loaded", e));
  }

  #applySha256(swarm) {
    if (!swarm.engine || !this.sha256) return;
    try {
      swarm.engine.setManifest(this.sha256);
    } catch (e) {
      console.warn("segswarm: bad SHA-256 manifest", e);
    }
  }

  #startEngine(swarm) {
    const o = this.options;
    const engine = new SegswarmEngine({
      streamSwarmId: swarm.swarmId,
      idScheme: o.idScheme,
      live: swarm.live,
      httpBases: swarm.bases,
      trackers: o.trackers,
      rtcConfig: o.rtcConfig,
      consumeOnly: o.consumeOnly,
      uploadRateLimit: o.uploadRateLimit,
      cacheBytes: o.cacheBytes,
      maxPeers: o.maxPeers,
    });
    engine.onEvent((e) => {
      e.stream = swarm.swarmId;
      if (e.type === "bytes") {
        if (e.source === "http") this.totals.httpBytes += e.bytes;
        else if (e.source === "p2p") this.totals.p2pBytes += e.bytes;
        else this.totals.uploadedBytes += e.bytes;
      }
      this.#emit(e);
    });
    engine.setPlaylist(swarm.segments);
    swarm.engine = engine;
    this.#applySha256(swarm);
    const t = this.media?.currentTime;
    if (typeof t === "number" && Number.isFinite(t)) engine.setPlayback(t);
    // One engine per stream type: the level (or audio track) hls.js left would otherwise keep
    // prefetching its own segments. Then at most maxSwarms, least recently used stopped first.
    for (const s of this.swarms.values()) {
      if (s !== swarm && s.engine && s.type === swarm.type) this.#stopEngine(s);
    }
    const running = [...this.swarms.values()].filter((s) => s.engine);
    if (running.length > this.options.maxSwarms) {
      running.sort((a, b) => a.lastUsed - b.lastUsed);
      for (const s of running.slice(0, running.length - this.options.maxSwarms)) {
        if (s !== swarm) this.#stopEngine(s);
      }
    }
  }

  #stopEngine(swarm) {
    if (!swarm.engine) return;
    const engine = swarm.engine;
    swarm.engine = undefined;
    try {
      engine.destroy();
    } finally {
      engine.free();
    }
  }

  /** The engine and segment id for a fragment request, or undefined (then hls.js loads it). */
  resolve(context) {
    if (!wasmLoaded || this.destroyed) return undefined;
    // Init sections (#EXT-X-MAP) go over HTTP through hls.js's loader, as with p2p-media-loader.
    if (context.frag?.sn === "initSegment") return undefined;
    // A ranged request finds its byte-range fragment (same file and range), nothing else.
    const seg = this.segments.get(runtimeId(context.url, context.rangeStart, context.rangeEnd));
    if (!seg) return undefined;
    const swarm = this.swarms.get(seg.key);
    if (!swarm) return undefined;
    swarm.lastUsed = performance.now();
    if (!swarm.engine) this.#startEngine(swarm);
    const t = this.media?.currentTime;
    if (typeof t === "number" && Number.isFinite(t)) swarm.engine.setPlayback(t);
    return { engine: swarm.engine, id: seg.id, key: seg.key };
  }

  /** Counts a loader waiting for a segment. */
  want(key, id) {
    const k = `${key}\n${id}`;
    this.wants.set(k, (this.wants.get(k) ?? 0) + 1);
  }

  /** A loader stopped waiting; the engine is told once nobody waits. */
  unwant(target) {
    const k = `${target.key}\n${target.id}`;
    const n = (this.wants.get(k) ?? 1) - 1;
    if (n > 0) {
      this.wants.set(k, n);
      return;
    }
    this.wants.delete(k);
    if (this.swarms.get(target.key)?.engine === target.engine) target.engine.cancelSegment(target.id);
  }

  /** A loader got its segment. */
  done(target) {
    const k = `${target.key}\n${target.id}`;
    const n = (this.wants.get(k) ?? 1) - 1;
    if (n > 0) this.wants.set(k, n);
    else this.wants.delete(k);
  }
}

function newStats() {
  return {
    aborted: false,
    loaded: 0,
    retry: 0,
    total: 0,
    chunkCount: 0,
    bwEstimate: 0,
    loading: { start: 0, first: 0, end: 0 },
    parsing: { start: 0, end: 0 },
    buffering: { start: 0, first: 0, end: 0 },
  };
}

/** An hls.js fragment loader class (`fLoader`) backed by `p2p`, falling back to `DefaultLoader`. */
export function createFragmentLoader(p2p, DefaultLoader) {
  return class SegswarmFragmentLoader {
    constructor(config) {
      this.hlsConfig = config;
      this.stats = newStats();
      this.context = null;
      this.config = null;
      this.callbacks = null;
      this.fallback = null;
      this.pending = null;
      this.source = undefined;
    }

    load(context, config, callbacks) {
      this.context = context;
      this.config = config;
      this.callbacks = callbacks;
      const target = p2p.resolve(context);
      if (!target) {
        this.#useDefault();
        return;
      }
      const stats = this.stats;
      stats.loading.start = performance.now();
      const pending = { target, cancelled: false, timer: undefined };
      this.pending = pending;
      p2p.want(target.key, target.id);
      pending.timer = setTimeout(() => {
        if (pending.cancelled) return;
        this.#cancelPending();
        this.#useDefault();
      }, p2p.options.loaderTimeoutMs);
      target.engine.loadSegment(target.id).then(
        ({ data, source, cached }) => {
          if (pending.cancelled) return;
          clearTimeout(pending.timer);
          this.pending = null;
          p2p.done(target);
          this.source = source;
          const now = performance.now();
          stats.loading.end = now;
          stats.loading.first = Math.max(stats.loading.start, now - 1);
          if (cached || source !== "http") {
            // Cached or peer bytes arrive in no time, which would drive hls.js's bandwidth
            // estimate (and its level choice) sky-high for the HTTP loads to come: report them as
            // if they came at the current estimate, so P2P leaves ABR where HTTP put it.
            const bps = p2p.hls?.bandwidthEstimate;
            if (Number.isFinite(bps) && bps > 0) {
              const ms = (data.byteLength * 8000) / bps;
              stats.loading.start = Math.min(stats.loading.start, now - ms);
              stats.loading.first = stats.loading.start + Math.min(ms, 10);
            }
          }
          stats.loaded = data.byteLength;
          stats.total = data.byteLength;
          stats.chunkCount = 1;
          const cb = this.callbacks;
          if (!cb) return;
          const payload = data.buffer;
          cb.onProgress?.(stats, context, payload, null);
          cb.onSuccess({ url: context.url, data: payload }, stats, context, null);
        },
        () => {
          if (pending.cancelled) return;
          clearTimeout(pending.timer);
          this.pending = null;
          p2p.done(target);
          // Whatever the engine could not load, hls.js's own loader tries.
          this.#useDefault();
        },
      );
    }

    #useDefault() {
      if (!this.callbacks) return;
      const loader = new DefaultLoader(this.hlsConfig);
      this.fallback = loader;
      // hls.js reads the stats object it saw first (frag.stats = loader.stats).
      const s = this.stats;
      Object.assign(s, newStats());
      loader.stats = s;
      this.source = "http";
      loader.load(this.context, this.config, this.callbacks);
    }

    #cancelPending() {
      const pending = this.pending;
      if (!pending) return;
      this.pending = null;
      pending.cancelled = true;
      clearTimeout(pending.timer);
      p2p.unwant(pending.target);
    }

    abort() {
      if (this.fallback) {
        this.fallback.abort();
        return;
      }
      if (this.pending) {
        this.#cancelPending();
        this.stats.aborted = true;
        this.callbacks?.onAbort?.(this.stats, this.context, null);
      }
    }

    destroy() {
      if (this.fallback) {
        this.fallback.destroy();
        this.fallback = null;
      }
      this.#cancelPending();
      this.callbacks = null;
      this.config = null;
    }
  };
}

/**
 * Returns a subclass of `Hls` whose instances load media fragments through segswarm
 * (`instance.p2p` is their {@link SegswarmP2P}).
 */
export function withSegswarm(Hls, options = {}) {
  initSegswarm(options.wasmUrl);
  return class SegswarmHls extends Hls {
    constructor(userConfig = {}) {
      const p2p = new SegswarmP2P(options);
      const DefaultLoader = userConfig.loader ?? Hls.DefaultConfig.loader;
      const config = { ...userConfig, fLoader: createFragmentLoader(p2p, DefaultLoader) };
      if (p2p.options.liveSyncAdjust && config.liveSyncDuration == null && config.liveSyncDurationCount == null) {
        // hls.js picks the live start position before any of our playlist handlers runs: start
        // one segment further behind the edge than its default (3) so new segments are listed
        // early enough to pass between peers; playlist updates then go further (#adjustLiveSync).
        config.liveSyncDurationCount = 4;
      }
      super(config);
      /** The P2P side: events, totals, swarms. */
      this.p2p = p2p;
      p2p.attach(this);
    }
  };
}
