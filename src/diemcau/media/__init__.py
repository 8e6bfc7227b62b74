"""Media plane orchestration: Janus nodes, their API, topology and forwarding."""
