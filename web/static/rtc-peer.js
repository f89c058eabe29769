// Browser Peer client: see docs/protocol.md
