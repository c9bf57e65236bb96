"""How each similarity backend reports a neighbour's closeness, and how to
turn it into the index's distance (cosine distance = 1 - cosine similarity,
or euclidean distance): :data:`CONVERSIONS`."""

import numpy as np


def _cosine_from_similarity(s: np.ndarray) -> np.ndarray:
    return 1.0 - s


def _cosine_from_unit_score(s: np.ndarray) -> np.ndarray:
    """(1 + cos) / 2 (Elasticsearch, MongoDB Atlas) -> 1 - cos."""
    return 2.0 * (1.0 - s)


def _identity(d: np.ndarray) -> np.ndarray:
    return d


def _sqrt(d2: np.ndarray) -> np.ndarray:
    return np.sqrt(np.maximum(d2, 0.0))


def _euclidean_from_inverse_square(s: np.ndarray) -> np.ndarray:
    """1 / (1 + d^2) (Elasticsearch l2_norm) -> d."""
    return np.sqrt(np.maximum(1.0 / s - 1.0, 0.0))


def _euclidean_from_inverse(s: np.ndarray) -> np.ndarray:
    """1 / (1 + d) (MongoDB Atlas euclidean) -> d."""
    return np.maximum(1.0 / s - 1.0, 0.0)


# (backend, metric) -> the index's distance from the value the backend reports.
# Tested against real engines: milvus, pgvector, sklearn, lancedb
# (tests/test_backend_search.py). The others follow each engine's documented
# score: qdrant (cosine similarity; euclidean distance), elasticsearch
# (_score = (1 + cos) / 2; 1 / (1 + d^2)), mongodb (vectorSearchScore =
# (1 + cos) / 2; 1 / (1 + d)), redis (cosine distance; squared L2), pinecone
# (cosine similarity; squared euclidean).
CONVERSIONS = {
    ("milvus", "cosine"): _cosine_from_similarity,
    ("milvus", "euclidean"): _sqrt,
    ("pgvector", "cosine"): _identity,
    ("pgvector", "euclidean"): _identity,
    ("sklearn", "cosine"): _identity,
    ("sklearn", "euclidean"): _identity,
    ("lancedb", "cosine"): _identity,
    ("lancedb", "euclidean"): _sqrt,
    ("qdrant", "cosine"): _cosine_from_similarity,
    ("qdrant", "euclidean"): _identity,
    ("elasticsearch", "cosine"): _cosine_from_unit_score,
    ("elasticsearch", "euclidean"): _euclidean_from_inverse_square,
    ("mongodb", "cosine"): _cosine_from_unit_score,
    ("mongodb", "euclidean"): _euclidean_from_inverse,
    ("redis", "cosine"): _identity,
    ("redis", "euclidean"): _sqrt,
    ("pinecone", "cosine"): _cosine_from_similarity,
    ("pinecone", "euclidean"): _sqrt,
}
