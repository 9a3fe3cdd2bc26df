"""The engine's numeric version: the explorer's cache keys carry it, so results are never served stale."""

# Bump whenever a change can alter any number the engine computes (energies, probabilities,
# paths, recall, scores, layouts): every cached result then misses and is recomputed.
# 1: the positional-encoding table computed in float64 and rounded.
# 2: the release's float32 positional-encoding table, bit for bit.
ENGINE_VERSION = 2
