"""In-memory search per signal kind, shared by the hub and the agent.

    from hashhub.index import PdqIndex, ExactIndex, PdnaIndex
    ix = PdqIndex(); ix.add(ids, codes); ix.search(codes, radius=31)  # [(ids, distances), ...]
    ex = ExactIndex(); ex.add(ids, [bytes.fromhex(md5)]); ex.search(values)  # [ids, ...]
    px = PdnaIndex(); px.add(ids, vectors); px.search(vectors, threshold=1800.0)

All three are exact (no approximate answers), take upserts and removals while searches run in other
threads, and save to / load from a versioned binary file (memory-mapped on load). Bad input raises
IndexInputError and unreadable files IndexFileError, both ValueErrors with a message to act on.
"""

from hashhub.index.errors import IndexFileError, IndexInputError
from hashhub.index.exact import ExactIndex
from hashhub.index.pdna import PdnaIndex
from hashhub.index.pdq import PdqIndex

__all__ = ["ExactIndex", "IndexFileError", "IndexInputError", "PdnaIndex", "PdqIndex"]
