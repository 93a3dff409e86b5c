"""The train command's default precision follows the CPU's BF16 support."""

from __future__ import annotations

from gancomp.commands.train import default_precision


def test_bf16_cpu_gets_mixed_bfloat16(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags : fpu sse2 avx512f avx512_bf16 avx512_vnni\n")
    assert default_precision(str(info)) == "mixed_bfloat16"
    info.write_text("processor : 0\nflags : fpu sse2 amx_tile amx_bf16\n")
    assert default_precision(str(info)) == "mixed_bfloat16"


def test_cpu_without_bf16_gets_float32(tmp_path):
    info = tmp_path / "cpuinfo"
    # avx512bw and a substring like "xavx512_bf16x" must not count
    info.write_text("processor : 0\nflags : fpu sse2 avx512f avx512bw xavx512_bf16x\n")
    assert default_precision(str(info)) == "float32"


def test_unreadable_cpuinfo_gets_float32(tmp_path):
    assert default_precision(str(tmp_path / "missing")) == "float32"
