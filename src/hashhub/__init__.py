"""hashhub: an open hash-sharing hub and member-side matcher for known abuse imagery.

The hub (`hashhub hub ...`) pools graded fingerprints from contributors and shares them with vetted
members; the agent (`hashhub agent ...`) follows hubs and matches uploads locally.
"""

__version__ = "0.1.0"
