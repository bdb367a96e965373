"""Several app instances on one Asterisk: callers taken by first claim (StasisBroadcast), ARI
app names held as shards under leases, and a dead instance's calls taken over by a survivor."""
