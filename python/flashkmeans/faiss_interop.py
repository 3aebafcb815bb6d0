"""Train a faiss-python index (Faiss's own wheel, e.g. PyPI faiss-cpu) with
the flashkmeans engine doing its k-means: the IVF coarse quantizer and the
PQ codebooks. An existing script changes one line:

    index.train(xt)                          # before
    flashkmeans.train_faiss_index(index, xt)  # after

Everything else (transforms such as OPQ/PCA, scalar quantizers, residual
bookkeeping, precomputed tables) is still done by Faiss itself, through its
public Python API, so the trained index is an ordinary Faiss index.

Adding vectors the same way:

    index.add(xb)                             # before
    flashkmeans.add_to_faiss_index(index, xb)  # after: lists and PQ codes on the engine"""

from __future__ import annotations

import numpy as np

from . import _engine
from . import _flashkmeans as _ext
from .clustering_parameters import ClusteringParameters


def train_faiss_index(index, x, *, gpu=None, progress: bool = False, **overrides):
    """Train `index` (a faiss.Index) on x (n, d) like index.train(x) does,
    running its k-means steps on the engine with the index's own clustering
    parameters (index.cp, pq.cp: niter, seed, max_points_per_centroid, ...).
    gpu: as in flashkmeans.Kmeans; overrides: ClusteringParameters fields
    applied on top (e.g. verbose=True). Returns the index."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    index = faiss.downcast_index(index)
    options = dict(gpu=gpu, progress=progress, overrides=overrides)
    if isinstance(index, faiss.IndexPreTransform):
        x = _apply_chain(index, x, train=True)
        train_faiss_index(index.index, x, gpu=gpu, progress=progress, **overrides)
        index.is_trained = True
        return index
    if isinstance(index, faiss.IndexIVF):
        _train_coarse_quantizer(faiss, index, x, options)
    pq = getattr(index, "pq", None)
    if isinstance(pq, faiss.ProductQuantizer) and pq.train_type == pq.Train_default:
        _train_pq_then_faiss(faiss, index, pq, x, options)
    else:
        index.train(x)
    return index


def _apply_chain(index, x, train: bool) -> np.ndarray:
    """x through an IndexPreTransform's chain, each transform on the previous
    one's output (train: untrained ones are trained first, as
    IndexPreTransform::train does)."""
    for i in range(index.chain.size()):
        transform = index.chain.at(i)
        if train and not transform.is_trained:
            transform.train(x)
        x = transform.apply(x)
    return x


def _cluster(x, k, faiss_cp, metric, options, batched=False) -> np.ndarray:
    cp = ClusteringParameters.from_faiss(faiss_cp, progress=options["progress"],
                                         **options["overrides"])
    result = _engine.fit(x, k, cp.to_engine(options["gpu"], metric), batched=batched,
                         progress=cp.progress)
    return result["centroids"]


def _train_coarse_quantizer(faiss, index, x, options) -> None:
    quantizer = faiss.downcast_index(index.quantizer)
    if quantizer.is_trained and quantizer.ntotal == index.nlist:
        return  # Faiss skips it too
    if index.quantizer_trains_alone == 1:
        return  # the quantizer trains itself inside index.train
    if index.quantizer_trains_alone == 2 or quantizer.metric_type == faiss.METRIC_L2:
        metric = _ext.Metric.L2
    elif quantizer.metric_type == faiss.METRIC_INNER_PRODUCT:
        metric = _ext.Metric.inner_product
    else:
        return  # other metrics: Faiss's own k-means
    centroids = _cluster(x, index.nlist, index.cp, metric, options)[0]
    quantizer.reset()
    if not quantizer.is_trained:
        quantizer.train(centroids)
    quantizer.add(centroids)
    quantizer.is_trained = True


def _train_pq_then_faiss(faiss, index, pq, x, options) -> None:
    """The M sub-quantizers as one batched problem (M, n, dsub) on the
    engine; then index.train(x) with the codebooks as a hot start of zero
    iterations, so that Faiss does the rest exactly as usual."""
    xs = x
    if isinstance(index, faiss.IndexIVF):
        # the encoder's training set, bounded as IndexIVFPQ bounds it
        max_train = pq.cp.max_points_per_centroid * pq.ksub
        if max_train > 0 and len(xs) > max_train:
            rows = np.random.RandomState(pq.cp.seed).choice(len(xs), max_train, replace=False)
            xs = xs[np.sort(rows)]
        if index.by_residual:
            quantizer = faiss.downcast_index(index.quantizer)
            assignment = quantizer.assign(xs, 1).ravel()
            xs = xs - quantizer.reconstruct_n(0, quantizer.ntotal)[assignment]
    n = len(xs)
    # (n, M, dsub) viewed as (M, n, dsub): strided, read in place by the engine
    sub = np.ascontiguousarray(xs).reshape(n, pq.M, pq.dsub).transpose(1, 0, 2)
    codebooks = _cluster(sub, pq.ksub, pq.cp, _ext.Metric.L2, options, batched=True)
    faiss.copy_array_to_vector(codebooks.ravel(), pq.centroids)
    niter = pq.cp.niter
    pq.train_type, pq.cp.niter = pq.Train_hot_start, 0
    try:
        index.train(x)
    finally:
        pq.train_type, pq.cp.niter = pq.Train_default, niter


def add_to_faiss_index(index, x, ids=None, *, gpu=None):
    """index.add(x) (or add_with_ids(x, ids)) with the inverted-list numbers
    and, for IVF-PQ with 8-bit codes, the PQ codes computed by the engine's
    assign instead of Faiss's CPU code. What is stored is what Faiss's add
    stores (the same lists, ids and codes, except where two centroids tie
    exactly); IVF-PQ entries go in through add_sa_codes, other IVF types
    with a flat quantizer through add_core with the lists given. Transforms
    (OPQ, PCA, ...) are applied first; other index types use Faiss's add.
    Returns the index."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    if ids is not None:
        ids = np.ascontiguousarray(ids, dtype=np.int64)
        if ids.shape != (len(x),):
            raise ValueError(f"ids: expected shape ({len(x)},), got {ids.shape}")
    index = faiss.downcast_index(index)
    if not index.is_trained:
        raise RuntimeError("add_to_faiss_index: the index is not trained")
    if isinstance(index, faiss.IndexPreTransform):
        x = _apply_chain(index, x, train=False)
        add_to_faiss_index(index.index, x, ids, gpu=gpu)
        index.ntotal = index.index.ntotal
        return index
    quantizer = faiss.downcast_index(index.quantizer) if isinstance(index, faiss.IndexIVF) else None
    flat = isinstance(quantizer, faiss.IndexFlat) and quantizer.metric_type in (
        faiss.METRIC_L2, faiss.METRIC_INNER_PRODUCT)
    if not flat or type(index) not in (faiss.IndexIVFPQ, faiss.IndexIVFFlat,
                                       faiss.IndexIVFScalarQuantizer):
        if ids is None:
            index.add(x)
        else:
            index.add_with_ids(x, ids)
        return index
    device, gpu_id = _engine.device_choice(gpu)
    centroids = quantizer.reconstruct_n(0, quantizer.ntotal)
    metric = (_ext.Metric.inner_product if quantizer.metric_type == faiss.METRIC_INNER_PRODUCT
              else _ext.Metric.L2)
    lists = _engine.assign(x, centroids, 1, metric=metric, device=device, gpu_id=gpu_id,
                           with_distances=False)[1].ravel()
    if type(index) is not faiss.IndexIVFPQ or index.pq.nbits != 8:
        index.add_core(len(x), faiss.swig_ptr(x), None if ids is None else faiss.swig_ptr(ids),
                       faiss.swig_ptr(np.ascontiguousarray(lists)))
        return index
    pq = index.pq
    residuals = x - centroids[lists] if index.by_residual else x
    codebooks = faiss.vector_to_array(pq.centroids).reshape(pq.M, pq.ksub, pq.dsub)
    codes = np.empty((len(x), pq.M), dtype=np.uint8)
    for m in range(pq.M):  # one engine assign per sub-space, as ProductQuantizer encodes
        sub = np.ascontiguousarray(residuals[:, m * pq.dsub:(m + 1) * pq.dsub])
        codes[:, m] = _engine.assign(sub, codebooks[m], 1, device=device, gpu_id=gpu_id,
                                     with_distances=False)[1].ravel()
    # Faiss's standalone code: the list number in coarse_code_size() bytes
    # (little-endian), then the PQ code.
    list_bytes = lists.astype("<u8").view(np.uint8).reshape(len(x), 8)[:, :index.coarse_code_size()]
    index.add_sa_codes(np.ascontiguousarray(np.hstack([list_bytes, codes])), ids)
    return index
