"""Generation backends behind one small protocol (`Policy`, `Segment`)."""

from dslib.policy.base import Policy, Segment

__all__ = ["Policy", "Segment"]
