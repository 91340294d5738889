"""In-memory search per signal kind, shared by the hub and the agent.

    from hashhub.index import PdqIndex
    ix = PdqIndex(); ix.add(ids, codes); ix.search(codes, radius=31)

This first version is exact brute force over numpy arrays; the fast multi-index version replaces its
internals behind the same API.
"""

from hashhub.index.exact import ExactIndex
from hashhub.index.pdq import PdqIndex

__all__ = ["ExactIndex", "PdqIndex"]
