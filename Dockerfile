# syntax=docker/dockerfile:1
#
# basecall in a container: a builder stage makes a virtual environment in /opt/venv (torch pinned, then our wheel
# and its dependencies), and a runtime stage copies just that venv onto the same base with only python3 added.
#
# CPU (default):
#   docker build -t basecall .
#   docker run --rm -v "$PWD/reads:/data:ro" basecall basecaller --model /data/model /data/reads.pod5 > calls.fastq
#
# CUDA (untested: no registry to pull the base from, no GPU beside a container engine here; the host needs the
# NVIDIA driver and the NVIDIA container toolkit):
#   docker build -t basecall:cuda \
#     --build-arg BASE_IMAGE=nvidia/cuda:13.0.2-runtime-ubuntu24.04 \
#     --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu130 .
#   docker run --rm --gpus all ... basecall:cuda basecaller --device cuda ...
# The CUDA torch wheels bring the CUDA libraries as pip packages (nvidia-*-cu13, several GB), so the CUDA base
# is a convenience, not a requirement; PyPI's own torch==2.13.0 for Linux x86_64 is also a CUDA 13.0 build
# (TORCH_INDEX_URL=https://pypi.org/simple).
#
# Both stages use the same BASE_IMAGE, so the venv's python3 is the one it was built with. The base must be
# Debian/Ubuntu-like (apt-get) with a Python >= 3.11 as python3: Debian bookworm (3.11) or trixie (3.13),
# Ubuntu 24.04 (3.12). Build-only pip settings (PIP_INDEX_URL, PIP_EXTRA_INDEX_URL, PIP_FIND_LINKS, PIP_CERT,
# PIP_TRUSTED_HOST) can be passed with --build-arg for a mirror; they exist only in the builder stage.
# benchmarks/container_build.sh builds and runs this file without a registry (podman + a debootstrapped base).

ARG BASE_IMAGE=debian:bookworm-slim

# ---------------------------------------------------------------------------------------------------- builder
FROM ${BASE_IMAGE} AS builder

ARG DEBIAN_FRONTEND=noninteractive
# gcc, the Python headers and zlib: mappy comes from PyPI as source only and is compiled here.
# Not version-pinned: the packages are whatever the chosen BASE_IMAGE's release has (pin the base by digest).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends \
        ca-certificates gcc libc6-dev python3 python3-dev python3-venv zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*

ARG PIP_INDEX_URL
ARG PIP_EXTRA_INDEX_URL
ARG PIP_FIND_LINKS
ARG PIP_CERT
ARG PIP_TRUSTED_HOST
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DEFAULT_TIMEOUT=120 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# torch first and pinned, from the CPU wheel index by default (a plain `pip install torch` on Linux takes a
# multi-GB CUDA build). Other index URLs: .../whl/cu130 etc. for CUDA.
ARG TORCH_VERSION=2.13.0
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "${TORCH_INDEX_URL}" "torch==${TORCH_VERSION}"

# Our wheel (with the shipped models/ as basecall.models), then install it with its dependencies; torch is
# already satisfied, so pip keeps the build installed above.
WORKDIR /src
COPY pyproject.toml README.md ./
COPY models ./models
COPY basecall ./basecall
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && pip install /wheels/basecall-*.whl \
    && pip check \
    && python -P -c "import torch, basecall, basecall.models; print('torch', torch.__version__, 'basecall', basecall.__version__)"

# ---------------------------------------------------------------------------------------------------- runtime
FROM ${BASE_IMAGE} AS runtime

ARG DEBIAN_FRONTEND=noninteractive
# Only the interpreter: every compiled dependency (torch, numpy, h5py, pod5, ...) carries its own libraries;
# mappy's zlib is part of every Debian/Ubuntu base. No C compiler: the CPU beam search's alignment is compiled
# by numba (its own LLVM, from llvmlite's wheel).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 zlib1g \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --gid 10001 basecall \
    && useradd --uid 10001 --gid basecall --create-home --home-dir /home/basecall \
        --shell /usr/sbin/nologin basecall \
    && mkdir -p /data \
    && chown basecall:basecall /data

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

LABEL org.opencontainers.image.title="basecall" \
      org.opencontainers.image.description="A Chiron-style nanopore basecaller in PyTorch: pod5/fast5/blow5 in, FASTQ out."

USER 10001:10001
WORKDIR /data
ENTRYPOINT ["basecall"]
CMD ["--help"]
