#!/usr/bin/env python3
"""elfcheck.py BINARY — exits 0 only for a static x86-64 ELF executable: no PT_INTERP (no
dynamic loader named) and no PT_DYNAMIC (no shared libraries), so the same file runs in a
`FROM scratch` image and on any Linux host. A glibc build fails here instead of shipping."""
import struct
import sys

PT_DYNAMIC, PT_INTERP = 2, 3


def problems(path: str) -> list[str]:
    with open(path, "rb") as f:
        head = f.read(64)
        if head[:4] != b"\x7fELF" or head[4] != 2:
            return ["not a 64-bit ELF file"]
        if struct.unpack_from("<H", head, 18)[0] != 62:
            return ["not x86-64"]
        phoff = struct.unpack_from("<Q", head, 32)[0]
        phentsize, phnum = struct.unpack_from("<HH", head, 54)
        f.seek(phoff)
        table = f.read(phentsize * phnum)
    out = []
    for i in range(phnum):
        p_type = struct.unpack_from("<I", table, i * phentsize)[0]
        if p_type == PT_INTERP:
            out.append("names a dynamic loader (PT_INTERP)")
        if p_type == PT_DYNAMIC:
            out.append("links shared libraries (PT_DYNAMIC)")
    return out


if __name__ == "__main__":
    found = problems(sys.argv[1])
    for p in found:
        print(f"elfcheck: {sys.argv[1]}: {p}", file=sys.stderr)
    sys.exit(1 if found else 0)
