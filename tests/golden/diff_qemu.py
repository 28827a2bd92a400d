#!/usr/bin/python3
"""Differential test: random metadata damage, imgcheck check against qemu-img check.

    diff_qemu.py --imgcheck PATH [--iterations N] [--seed S] [--repair] [--keep DIR] [-v]

Builds a few small images with qemu-img/qemu-io (v3 64 KiB with an internal snapshot, v2 4 KiB,
refcount widths 1 and 64, extended L2, zlib and zstd compressed clusters, 2 MiB clusters, a
persistent bitmap, an overlay on a backing file), then, per
iteration, copies one, damages one to three metadata words (header field, L1/L2 entry, refcount table or
block entry, snapshot table field: random bit flips, zero, past the end of the file, misaligned,
reserved or flag bits, refcount +-1), or cuts it short, and runs both checkers on it.

They must agree as in the golden test: where qemu-img check could check the image (exit 0, 2
or 3), the same exit code, the same leaks and corruptions non-zero iff qemu's; where qemu could
not (exit 1), ours must still end cleanly. Always: no crash or signal, no exit >= 128, under
10 s, image bytes unchanged. Differences are printed with the damage that caused them and the
image is kept (--keep DIR) for a fixture. Exit 1 when any iteration disagreed.

--repair: every damaged image qemu could check (exit 2 or 3) is also repaired, by
`qemu-img check -r all` on one copy and by `imgcheck repair --all` on another (again with
--allow-data-loss when qemu ended clean and we did not). Ours must never leave more errors than
before, must end clean wherever qemu's repair does, must keep guest data (qemu-img compare)
without --allow-data-loss, and `imgcheck undo` must restore the damaged bytes exactly.

Known, deliberate differences (README, golden test) are not failures: the corrupt bit (we report
it, exit 2; qemu checks on), an image qemu refuses to open (we may still check it).
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time

TIMEOUT = 10


def sh(*cmd):
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def qemu_io(path, *cmds, fmt='qcow2'):
    args = ['qemu-io', '-f', fmt]
    for c in cmds:
        args += ['-c', c]
    sh(*args, path)


def build_bases(d):
    """name -> path of small valid images with varied metadata."""
    bases = {}

    def make(name, opts, size='64M', writes=(), post=None):
        p = os.path.join(d, name + '.qcow2')
        sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-o', opts, p, size)
        if writes:
            qemu_io(p, *writes)
        if post:
            post(p)
        bases[name] = p

    w = ['write -P 0x11 0 256k', 'write -P 0x22 8M 64k', 'write -P 0x33 40M 1M',
         'write -z 20M 128k', 'discard 40M 64k']
    make('v3-64k', 'cluster_size=65536', writes=w,
         post=lambda p: (sh('qemu-img', 'snapshot', '-c', 's1', p),
                         qemu_io(p, 'write -P 0x44 0 64k', 'write -P 0x55 50M 64k')))
    make('v2-4k', 'compat=0.10,cluster_size=4096', size='16M',
         writes=['write -P 0x11 0 64k', 'write -P 0x22 8M 12k', 'write -P 0x33 12M 4k'])
    make('rc1', 'refcount_bits=1,cluster_size=4096', size='16M', writes=w[:2])
    make('rc64-snap', 'refcount_bits=64', writes=w,
         post=lambda p: (sh('qemu-img', 'snapshot', '-c', 'a', p), sh('qemu-img', 'snapshot', '-c', 'b', p)))
    make('ext-l2', 'extended_l2=on,cluster_size=65536', writes=['write -P 0x11 0 8k', 'write -P 0x22 1M 72k',
                                                                 'write -z 4M 8k'])
    make('bitmap', 'cluster_size=65536', writes=w[:3],
         post=lambda p: sh('qemu-img', 'bitmap', '--add', p, 'b0'))
    raw = os.path.join(d, 'data.raw')
    with open(raw, 'wb') as f:
        for i in range(64):
            # compressible text, and every third cluster random bytes (stored uncompressed)
            f.write(((b'%08d compressible text ' % i) * 2048)[:65536] if i % 3 else os.urandom(65536))
    pc = os.path.join(d, 'compressed.qcow2')
    sh('qemu-img', 'convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', raw, pc)
    qemu_io(pc, 'write -P 0x66 64k 64k')
    bases['compressed'] = pc
    pz = os.path.join(d, 'zstd.qcow2')
    sh('qemu-img', 'convert', '-q', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd', raw, pz)
    bases['zstd'] = pz
    make('c2m', 'cluster_size=2097152', size='128M', writes=['write -P 0x11 0 3M', 'write -P 0x22 64M 1M'])
    base = bases['v2-4k']
    make('overlay', 'backing_file=%s,backing_fmt=qcow2,cluster_size=16384' % base, size='16M',
         writes=['write -P 0x77 4k 40k', 'write -z 8M 16k'])
    return bases


def u64(b, o):
    return struct.unpack_from('>Q', b, o)[0]


def u32(b, o):
    return struct.unpack_from('>I', b, o)[0]


def targets(path):
    """[(kind, offset, width)] of metadata words worth damaging."""
    data = open(path, 'rb').read()
    n = len(data)
    cb = u32(data, 20)
    cs = 1 << cb
    version = u32(data, 4)
    ext_l2 = version >= 3 and (u64(data, 72) >> 4) & 1
    l2_entry = 16 if ext_l2 else 8
    out = []
    for off, w, what in ((8, 8, 'backing_file_offset'), (20, 4, 'cluster_bits'), (24, 8, 'size'),
                         (32, 4, 'crypt_method'), (36, 4, 'l1_size'), (40, 8, 'l1_table_offset'),
                         (48, 8, 'refcount_table_offset'), (56, 4, 'refcount_table_clusters'),
                         (60, 4, 'nb_snapshots'), (64, 8, 'snapshots_offset')):
        out.append(('header.' + what, off, w))
    if version >= 3:
        for off, w, what in ((72, 8, 'incompatible'), (80, 8, 'compatible'), (88, 8, 'autoclear'),
                             (96, 4, 'refcount_order'), (100, 4, 'header_length')):
            out.append(('header.' + what, off, w))

    def l1_walk(l1_off, l1_size, tag):
        for i in range(min(l1_size, 4096)):
            o = l1_off + 8 * i
            if o + 8 > n:
                break
            e = u64(data, o)
            if e == 0:
                continue
            out.append((tag + '.l1', o, 8))
            l2 = e & 0x00fffffffffffe00
            if l2 and l2 + cs <= n:
                for j in range(cs // l2_entry):
                    eo = l2 + j * l2_entry
                    if u64(data, eo) or (ext_l2 and u64(data, eo + 8)):
                        out.append((tag + '.l2', eo, 8))
                        if ext_l2:
                            out.append((tag + '.l2-bitmap', eo + 8, 8))

    l1_walk(u64(data, 40), u32(data, 36), 'active')
    rt, rtc = u64(data, 48), u32(data, 56)
    for i in range(min(rtc * cs // 8, 65536)):
        o = rt + 8 * i
        if o + 8 > n:
            break
        e = u64(data, o)
        if not e:
            continue
        out.append(('reftable', o, 8))
        if e + cs <= n:
            order = u32(data, 96) if version >= 3 else 4
            width = max(1, (1 << order) // 8)
            for j in range(0, cs, width):
                if any(data[e + j:e + j + width]):
                    out.append(('refblock', e + j, width))
    snap_off = u64(data, 64)
    for _ in range(min(u32(data, 60), 64)):
        if snap_off + 40 > n:
            break
        out.append(('snapshot.l1_offset', snap_off, 8))
        out.append(('snapshot.l1_size', snap_off + 8, 4))
        l1_walk(u64(data, snap_off), u32(data, snap_off + 8), 'snapshot')
        id_len, name_len = struct.unpack_from('>HH', data, snap_off + 12)
        ln = 40 + u32(data, snap_off + 36) + id_len + name_len
        snap_off += (ln + 7) & ~7
    return out, cs


def damage(path, tg, cs, rng):
    """Applies one random damage at one of the targets; returns its description."""
    kind, off, width = rng.choice(tg)
    size = os.path.getsize(path)
    with open(path, 'r+b') as f:
        f.seek(off)
        old = int.from_bytes(f.read(width), 'big')
        mask = (1 << (8 * width)) - 1
        choice = rng.randrange(8)
        if choice == 0:
            new = old ^ (1 << rng.randrange(8 * width))
        elif choice == 1:
            new = 0
        elif choice == 2 and width == 8:
            new = (old & ~0x00fffffffffffe00) | ((size + cs * rng.randrange(1, 64)) & 0x00fffffffffffe00)
        elif choice == 3 and width == 8:
            new = old + rng.choice((512, 8, cs // 2 or 1))
        elif choice == 4 and width == 8:
            new = old | (1 << rng.choice((1, 2, 3, 9, 56, 57, 58, 59, 60, 61, 62, 63)))
        elif choice == 5:
            new = old + rng.choice((1, -1, 2))
        elif choice == 6 and width == 8:
            new = old ^ (1 << 63)
        else:
            new = rng.getrandbits(8 * width)
        new &= mask
        f.seek(off)
        f.write(new.to_bytes(width, 'big'))
    return '%s @%#x (%d bytes): %#x -> %#x' % (kind, off, width, old, new)


def run(cmd):
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors='replace', timeout=TIMEOUT,
                           stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return None, '', '', time.monotonic() - t
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t


def load(text):
    try:
        obj = json.loads(text)
        return obj if isinstance(obj, dict) else None
    except ValueError:
        return None


def compare(img, imgcheck, tally):
    """[] when the checkers agree, else the differences. tally counts qemu's exit codes."""
    h = hashlib.sha256(open(img, 'rb').read()).hexdigest()
    q_rc, q_out, q_err, _ = run(['qemu-img', 'check', '--output', 'json', '-f', 'qcow2', img])
    rc, out, err, secs = run([imgcheck, 'check', '--no-guest', '--output', 'json', img])
    bad = []
    if rc is None:
        return ['imgcheck timed out (%d s)' % TIMEOUT]
    if rc < 0 or rc >= 128:
        return ['imgcheck crashed (exit %d): %s' % (rc, err.strip()[-300:])]
    if hashlib.sha256(open(img, 'rb').read()).hexdigest() != h:
        bad.append('image changed')
    tally[q_rc] = tally.get(q_rc, 0) + 1
    js, q_js = load(out), load(q_out)
    if js is None:
        bad.append('no JSON from imgcheck (exit %d): %s' % (rc, (err or out).strip()[:200]))
    corrupt_bit = bool(js and any(f.get('slug') == 'header.corrupt-bit' for f in js.get('findings', [])))
    if q_rc is None or q_rc not in (0, 2, 3):
        return bad  # qemu could not check it (or hung): only our own sanity is required
    if rc != q_rc and not (corrupt_bit and rc == 2):
        bad.append('exit %d, qemu %d' % (rc, q_rc))
    if js is not None and q_js is not None:
        if js.get('leaks', 0) != q_js.get('leaks', 0) and not corrupt_bit:
            bad.append('leaks %s, qemu %s' % (js.get('leaks', 0), q_js.get('leaks', 0)))
        if bool(js.get('corruptions', 0)) != bool(q_js.get('corruptions', 0)) and not corrupt_bit:
            bad.append('corruptions %s, qemu %s' % (js.get('corruptions', 0), q_js.get('corruptions', 0)))
    if bad:
        slugs = sorted({f.get('slug') for f in (js or {}).get('findings', [])})
        bad.append('ours: %s; qemu: %s' % (', '.join(slugs), (q_err.strip().splitlines() or [''])[-1][:200]))
    return bad


def qemu_state(img):
    """(exit code, corruptions) of qemu-img check; exit None on timeout."""
    rc, out, _, _ = run(['qemu-img', 'check', '--output', 'json', '-f', 'qcow2', img])
    js = load(out) or {}
    return rc, js.get('corruptions', 0) + js.get('check-errors', 0)


def sha(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()


def compare_repair(img, imgcheck, work, tally):
    """Repairs copies of a damaged image that qemu could check: ours never worse than before,
    clean wherever `qemu-img check -r all` ends clean (with --allow-data-loss when the plain
    repair names data it would not touch), guest data unchanged without --allow-data-loss,
    and undo restores the damaged bytes."""
    q_rc, q_bad = qemu_state(img)
    if q_rc not in (2, 3):
        return []
    bad = []
    qcopy = os.path.join(work, 'qemu-r.qcow2')
    shutil.copyfile(img, qcopy)
    run(['qemu-img', 'check', '-r', 'all', '-f', 'qcow2', qcopy])
    q_after, _ = qemu_state(qcopy)
    damaged = sha(img)
    outcome = None
    for extra in ([], ['--allow-data-loss']):
        mine = os.path.join(work, 'ours-r.qcow2')
        journal = mine + '.undo'
        shutil.copyfile(img, mine)
        if os.path.exists(journal):
            os.unlink(journal)
        rc, out, err, _ = run([imgcheck, 'repair', '--all', '--journal', journal, '--output', 'json']
                              + extra + [mine])
        tag = 'repair%s' % (' ' + extra[0] if extra else '')
        if rc is None or rc < 0 or rc >= 128:
            return bad + ['%s: crashed or timed out (exit %s): %s' % (tag, rc, err.strip()[-200:])]
        after, after_bad = qemu_state(mine)
        if after is None or (after not in (0, 2, 3) and sha(mine) != damaged):
            bad.append('%s: qemu-img check cannot check the result (exit %s)' % (tag, after))
        elif after_bad > q_bad:
            bad.append('%s: worse, %d errors after, %d before' % (tag, after_bad, q_bad))
        if not extra and after in (0, 3) and sha(mine) != damaged:
            c_rc, _, _, _ = run(['qemu-img', 'compare', '-q', '-f', 'qcow2', '-F', 'qcow2', img, mine])
            if c_rc == 1:
                bad.append('%s: guest data changed without --allow-data-loss' % tag)
        if sha(mine) != damaged:
            if not os.path.exists(journal):
                bad.append('%s: image written, no journal' % tag)
            else:
                u_rc, _, u_err, _ = run([imgcheck, 'undo', journal, mine])
                if u_rc != 0 or sha(mine) != damaged:
                    bad.append('%s: undo exit %s, bytes %s: %s' % (
                        tag, u_rc, 'restored' if sha(mine) == damaged else 'NOT restored', u_err.strip()[:200]))
        outcome = after
        if after in (0, 3) or q_after not in (0, 3):
            break  # clean (or leaks only), or qemu could not clean it either
    key = 'repair: qemu -r all %s, ours %s' % ('clean' if q_after in (0, 3) else 'not clean',
                                                'clean' if outcome in (0, 3) else 'not clean')
    tally[key] = tally.get(key, 0) + 1
    if q_after in (0, 3) and outcome not in (0, 3):
        bad.append('qemu -r all ends clean (exit %s), ours does not (exit %s)' % (q_after, outcome))
    return bad


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--iterations', type=int, default=300)
    ap.add_argument('--seed', type=int, default=None)
    ap.add_argument('--keep', help='directory for the images that disagreed')
    ap.add_argument('--repair', action='store_true',
                    help='also repair each damaged image qemu could check, and compare with -r all')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    seed = a.seed if a.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    print('seed %d' % seed)
    work = tempfile.mkdtemp(prefix='imgcheck-diff-')
    try:
        bases = build_bases(work)
        names = sorted(bases)
        failures, tally = 0, {}
        for i in range(a.iterations):
            name = rng.choice(names)
            img = os.path.join(work, 'it.qcow2')
            shutil.copyfile(bases[name], img)
            # mostly one damage, sometimes two or three (repairs meet combined damage too)
            tg, cs = targets(img)  # of the intact image: damage may make its layout absurd
            if rng.random() < 0.1:  # a copy or download cut short
                size = os.path.getsize(img)
                cut = rng.choice((rng.randrange(size), rng.randrange(size // cs + 1) * cs))
                os.truncate(img, cut)
                what = 'truncated to %d of %d bytes' % (cut, size)
            else:
                what = ' + '.join(damage(img, tg, cs, rng) for _ in range(rng.choice((1, 1, 1, 2, 3))))
            bad = compare(img, a.imgcheck, tally)
            if a.repair:
                bad += compare_repair(img, a.imgcheck, work, tally)
            if bad:
                failures += 1
                print('DIFF %d %s: %s: %s' % (i, name, what, '; '.join(bad)))
                if a.keep:
                    os.makedirs(a.keep, exist_ok=True)
                    shutil.copyfile(img, os.path.join(a.keep, 'diff-%d-%d-%s.qcow2' % (seed, i, name)))
            elif a.verbose:
                print('same %d %s: %s' % (i, name, what))
        print('qemu-img check exit codes: %s (1 = could not check: only our own sanity compared)'
              % ', '.join('%s: %d' % (k, v) for k, v in sorted(tally.items(), key=lambda kv: str(kv[0]))))
        print('%d iterations, %d agreed, %d differed (seed %d)' % (a.iterations, a.iterations - failures,
                                                                failures, seed))
        return 1 if failures else 0
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == '__main__':
    sys.exit(main())
