#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Build the vmmd test guest: compile, link the ELF (with its PVH note), and wrap the
flat image in a bzImage with a real setup header (Linux boot protocol 2.15).

    mkimage.py CC OUTDIR linker.ld head.S guest.c ...
writes OUTDIR/test-guest.elf and OUTDIR/test-guest.bzImage."""

import os
import struct
import subprocess
import sys

FLAGS = ["-ffreestanding", "-nostdlib", "-mno-red-zone", "-fno-pic", "-fno-pie", "-static",
         "-no-pie", "-O2", "-g0", "-mno-sse", "-mno-mmx", "-mno-avx", "-mgeneral-regs-only",
         "-fno-stack-protector", "-fcf-protection=none", "-fno-asynchronous-unwind-tables",
         "-mcmodel=small", "-Wall", "-Wextra", "-Werror", "-Wno-unused-parameter", "-Wno-unused-command-line-argument",
         "-Wl,--build-id=none", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments"]


def main():
    cc, outdir, ld, *srcs = sys.argv[1:]
    elf = os.path.join(outdir, "test-guest.elf")
    flat = os.path.join(outdir, "test-guest.flat")
    subprocess.run([*cc.split(), *FLAGS, "-T", ld, "-o", elf, *srcs], check=True)
    objcopy = os.environ.get("OBJCOPY", "objcopy")
    subprocess.run([objcopy, "-O", "binary", "--remove-section=.note.pvh", elf, flat], check=True)
    with open(flat, "rb") as f:
        payload = f.read()
    os.unlink(flat)
    # bss is not in the flat image; init_size covers it (from the ELF's _end).
    nm = subprocess.run(["nm", elf], check=True, capture_output=True, text=True).stdout
    syms = {l.split()[2]: int(l.split()[0], 16) for l in nm.splitlines() if len(l.split()) == 3}
    init_size = syms["_end"] - 0x100000
    setup_sects = 4
    setup = bytearray(512 * (setup_sects + 1))
    payload += b"\0" * (-len(payload) % 16)
    hdr = {
        0x1F1: ("B", setup_sects),
        0x1FE: ("H", 0xAA55),
        0x202: ("4s", b"HdrS"),
        0x206: ("H", 0x020F),        # protocol 2.15
        0x211: ("B", 0x01),          # loadflags: LOADED_HIGH
        0x214: ("I", 0x100000),      # code32_start
        0x230: ("I", 0x200000),      # kernel_alignment
        0x234: ("B", 0),             # relocatable_kernel: no
        0x236: ("H", 0x1 | 0x2),     # xloadflags: XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
        0x238: ("I", 1023),          # cmdline_size
        0x258: ("Q", 0x100000),      # pref_address
        0x260: ("I", init_size),     # init_size
        0x1F4: ("I", len(payload) // 16),  # syssize
    }
    for off, (fmt, val) in hdr.items():
        struct.pack_into("<" + fmt, setup, off, val)
    setup[0x201] = 0x202 - 0x200 + 0x5E  # jump byte offset: unused by a 64-bit loader
    setup[0x200] = 0xEB
    with open(os.path.join(outdir, "test-guest.bzImage"), "wb") as f:
        f.write(setup + payload)


if __name__ == "__main__":
    main()
