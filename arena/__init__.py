"""Everything live: web UI and API, battles, endpoints, matchmaker, vote intake, the embedded Redis."""
