"""Run ids (random, short, URL-safe) and run names (two words and a counter)."""

from __future__ import annotations

import os

# 32 symbols, so a random byte maps onto them without bias
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"

ADJECTIVES = (
    "amber", "autumn", "bold", "brisk", "calm", "clever", "cosmic", "crisp", "dainty", "dawn",
    "deep", "eager", "earthy", "fancy", "fiery", "fluent", "frosty", "gentle", "glad", "golden",
    "grand", "happy", "hardy", "hidden", "icy", "jolly", "keen", "lively", "lucky", "lunar",
    "mellow", "misty", "noble", "olive", "proud", "quiet", "rapid", "rosy", "royal", "rustic",
    "sandy", "sharp", "silver", "snowy", "solar", "stellar", "sunny", "swift", "vivid", "wise",
)
NOUNS = (
    "badger", "brook", "canyon", "cedar", "comet", "cloud", "coral", "crane", "delta", "dune",
    "eagle", "ember", "falcon", "fern", "field", "fjord", "forest", "galaxy", "glade", "grove",
    "harbor", "heron", "hill", "lake", "lantern", "leaf", "meadow", "moon", "moss", "nebula",
    "ocean", "orbit", "otter", "owl", "pine", "planet", "pond", "river", "sea", "shadow",
    "sky", "snow", "sound", "spark", "star", "stream", "sun", "thunder", "valley", "wave",
)


def new_run_id(length: int = 8) -> str:
    """`length` random characters from [a-z2-7]: 5 bits each, 40 bits by default."""
    return "".join(_ALPHABET[b & 31] for b in os.urandom(length))


def new_run_name(counter: int) -> str:
    a, n = os.urandom(2)
    return f"{ADJECTIVES[a % len(ADJECTIVES)]}-{NOUNS[n % len(NOUNS)]}-{counter}"
