#!/usr/bin/env bash
# Builds the project's virtual environment (.venv) from the pinned lock, requirements/constraints.txt.
#
# Why a script and not a plain `pip install`: the OpenMMLab stack needs steps pip cannot
# express on its own (README.md, "The environment"):
#   - mmcv has no wheels on PyPI: its sdist is built with its compiled ops against the
#     installed torch, with setup.py patched from C++17 to C++20 (torch >= 2.14 headers);
#   - xtcocotools' PyPI wheel targets numpy 1: it is built from source against our numpy;
#   - mmpose and mmdet are installed with --no-deps (mmpose requires chumpy, unused and unbuildable).
# Built wheels are cached outside the checkout, in a folder keyed by Python, torch and numpy
# versions, so a second setup (or a fresh clone on the same machine) takes seconds, and a
# torch or numpy change can never pick up a wheel compiled against another version.
#
# Idempotent: re-running it installs nothing that is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
LOCK=requirements/constraints.txt
CACHE_ROOT=${CEPHALO_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cephalo/wheels}

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
pin() { sed -n "s/^$1==//p" "$LOCK"; }
# pip with the lock; the noise about this machine's missing local index folders is dropped.
pipc() { "$VENV/bin/python" -m pip --disable-pip-version-check "$@" -c "$LOCK" 2> >(grep -v "is ignored: it is neither" >&2); }

if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $($PYTHON --version)"
    "$PYTHON" -m venv "$VENV"
fi

say "build tools, torch, numpy"
pipc install -q -r requirements/build.txt
pipc install -q torch torchvision numpy

KEY="cp$("$VENV/bin/python" -c 'import sys; print(f"{sys.version_info[0]}{sys.version_info[1]}")')-torch$(pin torch)-numpy$(pin numpy)"
WHEELS="$CACHE_ROOT/$KEY"
mkdir -p "$WHEELS"

BUILT=()  # the wheel files to install
# build_wheel NAME FILE SED: builds NAME==<pinned version> from its sdist, with the sed
# expression SED applied to FILE in the unpacked source, unless that wheel is cached. The
# cache folder also carries a hash of the patch, so changing a patch rebuilds.
build_wheel() {
    local name=$1 file=$2 patch=$3 version; version=$(pin "$name")
    local dest; dest="$WHEELS/$name-$version-$(echo "$file $patch" | sha1sum | cut -c1-8)"
    if compgen -G "$dest/*.whl" >/dev/null; then
        say "$name $version: cached wheel in $dest"
        BUILT+=("$dest"/*.whl)
        return
    fi
    say "$name $version: building from source (mmcv: 10-15 minutes on 2 cores)"
    local work; work=$(mktemp -d "$WHEELS/.build-$name.XXXXXX")
    pipc download -q --no-deps --no-binary :all: --no-build-isolation -d "$work" "$name==$version"
    tar -xzf "$work"/*.tar.gz -C "$work"
    local src; src=$(find "$work" -mindepth 1 -maxdepth 1 -type d)
    sed -i "$patch" "$src/$file"
    # CUDA_VISIBLE_DEVICES= keeps the build to CPU ops on a GPU machine too: the models the kit
    # uses need no MMCV CUDA kernels, and a CUDA build would take an hour.
    CUDA_VISIBLE_DEVICES= FORCE_CUDA=0 MMCV_WITH_OPS=1 MAX_JOBS=${MAX_JOBS:-$(nproc)} \
        pipc wheel -q --no-deps --no-build-isolation --no-cache-dir -w "$work/out" "$src"
    mkdir -p "$dest"
    mv "$work"/out/*.whl "$dest/"  # a wheel appears in the cache only once complete
    rm -rf "$work"
    BUILT+=("$dest"/*.whl)
}
# torch >= 2.14's headers require C++20; mmcv 2.1.0 hard-codes C++17.
build_wheel mmcv setup.py 's/c++17/c++20/g'
# numpy 2 dropped the NPY_OWNDATA alias: without this, mask.iou/area/decode fail at run time.
build_wheel xtcocotools xtcocotools/_mask.pyx 's/np\.NPY_OWNDATA/np.NPY_ARRAY_OWNDATA/g'

say "the kit's requirements"
# The built wheels by path, and reinstalled: given a choice, pip would prefer PyPI's manylinux
# xtcocotools wheel (built against numpy 1) to ours of the same version, and it would keep an
# installed one of the same version built by another recipe.
pipc install -q --no-deps --force-reinstall "${BUILT[@]}"
pipc install -q -r requirements/main.txt -r requirements/dev.txt
pipc install -q --no-deps mmpose mmdet albumentations albucore
pipc install -q --no-deps --no-build-isolation -e .

say "Jupyter kernel 'cephalo'"
"$VENV/bin/python" -m ipykernel install --sys-prefix --name cephalo --display-name "cephalo (Python 3.11)" >/dev/null

# Every requirement must be met but mmpose's chumpy (deliberately left out).
broken=$("$VENV/bin/python" -m pip check 2>&1 | grep -v -e "requires chumpy, which is not installed" -e "requires opencv-python-headless, which is not installed" -e "^No broken requirements" || true)
if [ -n "$broken" ]; then
    echo "$broken" >&2
    say "pip check found broken requirements (above): fix requirements/ and re-run"
    exit 1
fi
say "done: $VENV ready"
