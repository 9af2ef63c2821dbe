import os

# One BLAS thread per process: a query's matrix products are small, and on a shared host
# OpenBLAS's spinning worker threads cost more than they save (measured: 3x slower parsing).
# Set before numpy loads; replicas scale out as processes instead.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from musicspace_shared.serve import main  # noqa: E402

main("llm")
