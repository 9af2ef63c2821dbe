import os

# Before numpy/scikit-learn load: one OpenMP/BLAS thread per call (requests run in parallel).
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from musicspace_shared.serve import main  # noqa: E402

main("m1")
