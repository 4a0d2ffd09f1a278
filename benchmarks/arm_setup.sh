#!/usr/bin/env bash
# The arm64 userland that benchmarks/arm.py runs LiteRT's ARM kernels in, on an x86 machine.
#
#   bash benchmarks/arm_setup.sh            # everything under $ARM_CACHE (default /work/arm-cache)
#
# Idempotent and resumable: each step leaves a marker and is skipped once done; rerun after an
# interruption. Needs root (apt) and the Debian (bookworm) and PyPI registries. What it makes:
#
#   $ARM_CACHE/rootfs            minimal arm64 root: python3.11 + its shared libraries, unpacked
#                                from arm64 .deb files with dpkg -x (no debootstrap, no chroot,
#                                no binfmt_misc); the aarch64 wheels of ai-edge-litert (the
#                                version .venv has) and numpy under rootfs/opt/litert
#   $ARM_CACHE/apt               a private apt configuration for arm64 (the host's is untouched)
#   $ARM_CACHE/libinsn_count.so  benchmarks/arm_insn_count.c built against qemu-plugin.h of the
#                                Debian qemu source matching the installed qemu-user (7.2)
#
# The guest is run directly, without binfmt_misc:
#   qemu-aarch64 -L $ARM_CACHE/rootfs $ARM_CACHE/rootfs/usr/bin/python3.11 ...
# Remove $ARM_CACHE to start over.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
C="${ARM_CACHE:-/work/arm-cache}"
VENV_PY="${VENV_PY:-$REPO/.venv/bin/python}"
ROOTFS="$C/rootfs"
A="$C/apt"
mkdir -p "$C"
say() { echo "[arm_setup] $*"; }

# 1. Host packages: qemu-user (the dynamic build; it loads TCG plugins), gcc for the plugin.
if ! command -v qemu-aarch64 >/dev/null || ! command -v gcc >/dev/null || ! command -v xz >/dev/null; then
  say "installing qemu-user gcc xz-utils"
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends qemu-user gcc libc6-dev xz-utils
fi
qemu-aarch64 -h | grep -q -- '-plugin' || { echo "qemu-aarch64 has no -plugin support" >&2; exit 1; }

# 2. A private apt for arm64 packages and Debian sources (host apt state is not touched).
APT_OPTS=(-oAPT::Architecture=arm64 -oAPT::Architectures=arm64 -oDebug::NoLocking=1
  -oDir::State::Lists="$A/lists" -oDir::State::status="$A/status" -oDir::Cache="$A/cache"
  -oDir::Cache::archives="$A/archives" -oDir::Etc::SourceList="$A/sources.list"
  -oDir::Etc::SourceParts="$A/none" -oDir::Etc::Preferences="$A/none"
  -oDir::Etc::PreferencesParts="$A/preferences.d")
if [ ! -f "$A/.updated" ]; then
  say "arm64 package lists"
  mkdir -p "$A/lists/partial" "$A/archives/partial" "$A/cache" "$A/preferences.d"
  : > "$A/status"
  cat > "$A/sources.list" <<'EOF'
deb http://deb.debian.org/debian bookworm main
deb http://deb.debian.org/debian-security bookworm-security main
deb-src http://deb.debian.org/debian bookworm main
EOF
  apt-get "${APT_OPTS[@]}" update -q
  touch "$A/.updated"
fi

# 3. The arm64 root: python3.11 and the libraries its closure and the wheels need.
if [ ! -f "$ROOTFS/.unpacked" ]; then
  say "arm64 python3.11 into $ROOTFS"
  apt-get "${APT_OPTS[@]}" install -y -q --download-only --no-install-recommends \
    python3.11-minimal libpython3.11-stdlib libstdc++6 libgcc-s1
  mkdir -p "$ROOTFS"
  for deb in "$A"/archives/*.deb; do dpkg -x "$deb" "$ROOTFS"; done
  rm -rf "$ROOTFS/usr/share/doc" "$ROOTFS/usr/share/man" "$ROOTFS/usr/share/locale"
  touch "$ROOTFS/.unpacked"
fi

# 3b. What LiteRT's CPU detection (the cpuinfo library: XNNPACK, ruy) reads. qemu-user passes
# /proc/cpuinfo and /sys through from the x86 host, and cpuinfo crashes (SIGSEGV while creating
# the interpreter) on x86 content; qemu -L serves these files from the root first. One core, a
# Cortex-A76 (the CPU model benchmarks/arm.py gives qemu: -cpu cortex-a76).
if [ ! -f "$ROOTFS/proc/cpuinfo" ]; then
  mkdir -p "$ROOTFS/proc" "$ROOTFS/sys/devices/system/cpu"
  printf '%s\n' "processor	: 0" "BogoMIPS	: 50.00" \
    "Features	: fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp" \
    "CPU implementer	: 0x41" "CPU architecture: 8" "CPU variant	: 0x4" "CPU part	: 0xd0b" \
    "CPU revision	: 1" "" > "$ROOTFS/proc/cpuinfo"
  for name in kernel_max possible present online; do
    echo 0 > "$ROOTFS/sys/devices/system/cpu/$name"
  done
fi

# 4. aarch64 wheels of the versions .venv runs on x86.
if [ ! -f "$ROOTFS/opt/litert/.installed" ]; then
  LITERT_VERSION="$("$VENV_PY" -c 'import importlib.metadata as m; print(m.version("ai-edge-litert"))')"
  NUMPY_VERSION="$("$VENV_PY" -c 'import numpy; print(numpy.__version__)')"
  say "aarch64 wheels: ai-edge-litert==$LITERT_VERSION numpy==$NUMPY_VERSION"
  PLATFORMS=(--platform manylinux2014_aarch64)
  for n in 17 27 28; do PLATFORMS+=(--platform "manylinux_2_${n}_aarch64"); done
  WHEEL_ARGS=(--only-binary=:all: --python-version 3.11 --implementation cp "${PLATFORMS[@]}")
  mkdir -p "$C/wheels"
  "$VENV_PY" -m pip download -q -d "$C/wheels" "${WHEEL_ARGS[@]}" \
    "ai-edge-litert==$LITERT_VERSION" "numpy==$NUMPY_VERSION"
  rm -rf "$ROOTFS/opt/litert"
  "$VENV_PY" -m pip install -q --no-deps --no-index --no-compile --target "$ROOTFS/opt/litert" \
    "${WHEEL_ARGS[@]}" "$C"/wheels/*.whl
  rm -rf "$C/wheels"
  touch "$ROOTFS/opt/litert/.installed"
fi

# 5. The instruction-counting plugin, built against the plugin header of the installed QEMU.
if [ ! -f "$C/libinsn_count.so" ] || [ "$REPO/benchmarks/arm_insn_count.c" -nt "$C/libinsn_count.so" ]; then
  if [ ! -f "$C/qemu-plugin/qemu-plugin.h" ]; then
    say "qemu-plugin.h from Debian's qemu source"
    mkdir -p "$C/qemu-src" "$C/qemu-plugin"
    (cd "$C/qemu-src" && apt-get "${APT_OPTS[@]}" source -q --download-only qemu)
    tar -xJf "$C"/qemu-src/qemu_*.orig.tar.xz -C "$C/qemu-src" --wildcards '*/include/qemu/qemu-plugin.h'
    cp "$C"/qemu-src/qemu-*/include/qemu/qemu-plugin.h "$C/qemu-plugin/"
    rm -rf "$C/qemu-src"
  fi
  say "building $C/libinsn_count.so"
  gcc -O2 -shared -fPIC -Wall -I"$C/qemu-plugin" "$REPO/benchmarks/arm_insn_count.c" \
    -o "$C/libinsn_count.so"
fi

# 6. Check: the guest imports LiteRT, and the plugin counts.
say "check: python3.11 (aarch64) imports ai_edge_litert under qemu-aarch64 with the plugin"
OPENBLAS_NUM_THREADS=1 PYTHONPATH=/opt/litert qemu-aarch64 -cpu cortex-a76 \
  -plugin "$C/libinsn_count.so,out=$C/check_insns.txt" -L "$ROOTFS" "$ROOTFS/usr/bin/python3.11" \
  -c 'import platform, numpy; from ai_edge_litert.interpreter import Interpreter; print(platform.machine(), "numpy", numpy.__version__)'
# 7. Check: LiteRT builds an interpreter (cpuinfo + XNNPACK) and runs a one-op model.
"$VENV_PY" -c 'import tensorflow as tf
f = tf.function(lambda x: tf.nn.relu(x), input_signature=[tf.TensorSpec([1, 4], tf.float32)])
c = tf.lite.TFLiteConverter.from_concrete_functions([f.get_concrete_function()], f)
open("'"$C"'/check.tflite", "wb").write(c.convert())' 2>/dev/null
OPENBLAS_NUM_THREADS=1 PYTHONPATH=/opt/litert qemu-aarch64 -cpu cortex-a76 -L "$ROOTFS" \
  "$ROOTFS/usr/bin/python3.11" -c 'import numpy as np; from ai_edge_litert.interpreter import Interpreter
i = Interpreter(model_path="'"$C"'/check.tflite", num_threads=1); i.allocate_tensors()
d = i.get_input_details()[0]; i.set_tensor(d["index"], np.array([[-1, 2, -3, 4]], np.float32)); i.invoke()
out = i.get_tensor(i.get_output_details()[0]["index"]); assert out.tolist() == [[0, 2, 0, 4]], out
print("LiteRT (aarch64) relu:", out.tolist())'
say "guest instructions of that check: $(cat "$C/check_insns.txt")"
say "$(du -sh "$C" | cut -f1) in $C"
