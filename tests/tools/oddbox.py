#!/usr/bin/python3
"""Makes the odd .box files the unpack tests need, in a few KB each, with
Python's tarfile or by hand where tarfile cannot write the format.

usage: oddbox.py KIND OUT [ARG]
  gnu-sparse OUT BYTES     old GNU sparse ('S') entry rootfs/huge of BYTES,
                           one data byte at its end (a 15 TiB one is 170 bytes)
  pax-sparse OUT BYTES     the same as PAX GNU.sparse 1.0
  bomb OUT GIB             rootfs/zeros: GIB GiB of zeros, gzip'd members
                           repeated, so it takes no time to make
  tail-bomb OUT GIB        a small valid tar followed by GIB GiB of zeros
  entries OUT N            N empty files
  privileged OUT PROVIDER [last]
                           setuid, setgid, a file capability and foreign
                           owners; under rootfs/ for a container box, at the
                           top otherwise; with `last`, metadata.json comes
                           after everything else
  devnodes OUT PROVIDER DIR
                           a char device, a FIFO and a symlink under DIR
All but `privileged` and `devnodes` are container boxes, metadata.json first.
"""
import gzip
import io
import struct
import sys
import tarfile
import zlib

# cap_net_raw (13) permitted and effective, VFS_CAP_REVISION_2
CAP = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def member(name, data=b"", **kw):
    m = tarfile.TarInfo(name)
    m.size = len(data)
    for k, v in kw.items():
        setattr(m, k, v)
    return m, io.BytesIO(data) if data else None


def meta(provider="container"):
    return member("metadata.json", b'{"provider": "%s"}' % provider.encode())


def write(out, members, mode="w:gz"):
    with tarfile.open(out, mode, format=tarfile.PAX_FORMAT) as t:
        for m, f in members:
            t.addfile(m, f)


def tar_bytes(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for m, f in members:
            t.addfile(m, f)
    return b.getvalue()


def num(v, width):
    """A tar numeric field: octal, or base-256 when it does not fit."""
    if v < 8 ** (width - 1):
        return ("%0*o" % (width - 1, v)).encode() + b"\0"
    return bytes([0x80]) + v.to_bytes(width, "big")[1:]


def gnu_header(name, size, sparse, real):
    h = bytearray(512)
    h[0:len(name)] = name.encode()
    h[100:108], h[108:116], h[116:124] = num(0o644, 8), num(0, 8), num(0, 8)
    h[124:136], h[136:148] = num(size, 12), num(0, 12)
    h[156:157] = b"S"
    h[257:265] = b"ustar  \0"
    for i, (off, n) in enumerate(sparse):
        h[386 + 24 * i:398 + 24 * i] = num(off, 12)
        h[398 + 24 * i:410 + 24 * i] = num(n, 12)
    h[483:495] = num(real, 12)
    h[148:156] = b"        "
    h[148:156] = ("%06o\0 " % sum(h)).encode()
    return bytes(h)


def head_of(members):
    """The members' tar bytes without the end-of-archive blocks."""
    head = tar_bytes(members).rstrip(b"\0")
    return head + b"\0" * (-len(head) % 512)


def gnu_sparse(out, real):
    head = head_of([meta()])
    body = gnu_header("rootfs/huge", 1, [(real - 1, 1)], real) + b"x" + b"\0" * 511
    with gzip.open(out, "wb") as f:
        f.write(head + body + b"\0" * 1024)


def pax_sparse(out, real):
    m = b"1\n%d\n1\n" % (real - 1)
    data = m + b"\0" * (512 - len(m)) + b"x"
    e, f = member("rootfs/GNUSparseFile.0/huge", data)
    e.pax_headers = {"GNU.sparse.major": "1", "GNU.sparse.minor": "0",
                     "GNU.sparse.name": "rootfs/huge", "GNU.sparse.realsize": str(real)}
    write(out, [meta(), (e, f)])


def zeros_member(n):
    c = zlib.compressobj(9, zlib.DEFLATED, 31)
    out, chunk = [], b"\0" * (1 << 20)
    for _ in range(n >> 20):
        out.append(c.compress(chunk))
    out.append(c.compress(b"\0" * (n & ((1 << 20) - 1))))
    out.append(c.flush())
    return b"".join(out)


def bomb(out, gib):
    """metadata.json, then rootfs/zeros of GIB GiB: each 64 MiB of zeros is
    one gzip member, written once and repeated; gzip readers read
    concatenated members as one stream."""
    size = gib << 30
    head = head_of([meta()])
    e = tarfile.TarInfo("rootfs/zeros")
    e.size = size
    head += e.tobuf(tarfile.PAX_FORMAT)
    piece = zeros_member(64 << 20)
    with open(out, "wb") as f:
        f.write(gzip.compress(head))
        for _ in range(size // (64 << 20)):
            f.write(piece)
        f.write(gzip.compress(b"\0" * 1024))


def tail_bomb(out, gib):
    body = tar_bytes([meta(), member("rootfs/etc/hostname", b"box\n")])
    piece = zeros_member(64 << 20)
    with open(out, "wb") as f:
        f.write(gzip.compress(body))
        for _ in range((gib << 30) // (64 << 20)):
            f.write(piece)


def entries(out, n):
    write(out, [meta()] + [member("rootfs/f%07d" % i) for i in range(n)])


def privileged(out, provider, last=False):
    top = "rootfs/" if provider == "container" else ""
    files = [
        member(top + "usr/bin/sudo", b"#!/bin/sh\n", mode=0o4755),
        member(top + "usr/bin/wall", b"#!/bin/sh\n", mode=0o2755, gid=5),
        member(top + "usr/bin/ping", b"#!/bin/sh\n", mode=0o755),
        member(top + "home/user/file", b"mine\n", mode=0o600, uid=1234, gid=5678),
        member(top + "usr/bin/sudoedit", type=tarfile.LNKTYPE, linkname=top + "usr/bin/sudo"),
    ]
    files[2][0].pax_headers = {"SCHILY.xattr.security.capability": CAP.decode("latin-1")}
    if provider != "container":
        files.append(member("box.img", b"disk"))
    write(out, files + [meta(provider)] if last else [meta(provider)] + files)


def devnodes(out, provider, where):
    dev = member(where + "/null", type=tarfile.CHRTYPE, devmajor=1, devminor=3, mode=0o666)
    fifo = member(where + "/initctl", type=tarfile.FIFOTYPE, mode=0o600)
    link = member(where + "/fd", type=tarfile.SYMTYPE, linkname="/proc/self/fd")
    files = [member("rootfs/etc/hostname", b"box\n"), dev, fifo, link]
    write(out, [meta(provider)] + files)


def main():
    kind, out, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    makers = {
        "gnu-sparse": lambda: gnu_sparse(out, int(args[0])),
        "pax-sparse": lambda: pax_sparse(out, int(args[0])),
        "bomb": lambda: bomb(out, int(args[0])),
        "tail-bomb": lambda: tail_bomb(out, int(args[0])),
        "entries": lambda: entries(out, int(args[0])),
        "privileged": lambda: privileged(out, args[0], args[1:] == ["last"]),
        "devnodes": lambda: devnodes(out, args[0], args[1]),
    }
    makers[kind]()


if __name__ == "__main__":
    main()
