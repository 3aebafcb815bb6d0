"""flashkmeans: exact Lloyd k-means on the GPU (Flash-KMeans kernels) or the
CPU, for numpy arrays, torch tensors and cupy arrays.

Two APIs over one engine:
- faiss-style: Kmeans(d, k, **kwargs).train(x) / .assign(x), and
  train_faiss_index(index, x) and add_to_faiss_index(index, x) for indexes
  of Faiss's own Python package;
- flash-kmeans-style: batch_kmeans_Euclid / _Cosine / _Dot and FlashKMeans.
"""

from ._engine import Error, OutOfMemoryError
from ._flashkmeans import cuda_available
from .clustering_parameters import ClusteringParameters
from .faiss_interop import add_to_faiss_index, train_faiss_index
from .flash_api import FlashKMeans, batch_kmeans_Cosine, batch_kmeans_Dot, batch_kmeans_Euclid
from .index_flat import METRIC_INNER_PRODUCT, METRIC_L2, IndexFlat
from .kmeans import Kmeans

__version__ = "0.1.0"

__all__ = [
    "Kmeans", "ClusteringParameters", "IndexFlat", "METRIC_L2", "METRIC_INNER_PRODUCT",
    "train_faiss_index", "add_to_faiss_index", "FlashKMeans", "batch_kmeans_Euclid", "batch_kmeans_Cosine",
    "batch_kmeans_Dot", "cuda_available", "Error", "OutOfMemoryError",
]
