"""What this machine's CPU offers, read without TensorFlow (for the precision default)."""

BF16_FLAGS = ("amx_bf16", "avx512_bf16")  # /proc/cpuinfo flags of native bfloat16 matmuls


def bf16_supported(cpuinfo_path="/proc/cpuinfo"):
    """Whether the CPU computes bfloat16 matmuls natively (AMX or AVX-512 BF16, the flags
    Linux lists in `cpuinfo_path`): where `mixed_bfloat16` can be faster than float32. False
    when the file is missing or unreadable (not Linux): nothing claims support."""
    try:
        with open(cpuinfo_path, encoding="utf-8", errors="replace") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "flags" and set(value.split()) & set(BF16_FLAGS):
                    return True
    except OSError:
        return False
    return False
