"""Transitional: the token bucket moved to `diemcau.ratelimit` (one home for rate limits).

Kept only for ``diemcau.presence``'s re-export until presence imports the new
module directly (issue 10, presence side).
"""

from diemcau.ratelimit import RateLimiter

__all__ = ["RateLimiter"]
