"""Static front-end pages served by the control server (no CDN, no external tiles)."""
