// Browser bundle entry: exposes the unmodified npm `bittorrent-tracker` client to the test page.
import Client from 'bittorrent-tracker'

globalThis.TrackerClient = Client
