#!/usr/bin/python3
"""Crash safety of `imgcheck repair`: SIGKILL before every file-changing syscall.

    crash_repair.py --imgcheck PATH [--max-points N] [--kinds FIXTURE...] [--undo-crash] [--keep]

For each repair kind (a fixture of fixtures/build_fixtures.py):
  1. run `imgcheck repair --journal J B` once under
     `strace -f -y -e trace=<file-changing syscalls>` and count the calls per syscall
     (write, pwrite64, pwritev*, writev, ftruncate, fallocate, fsync, fdatasync, rename*,
     unlink*, link*, ...); the complete run must be undoable too;
  2. for every syscall S seen and every N = 1..count(S) (at most --max-points per kind,
     spread evenly), on a fresh copy: `strace -f -e inject=S:signal=SIGKILL:when=N`
     (the process dies on entering its N-th S call, before it runs); then
     - B byte-identical to the original: pass (if J exists, `imgcheck undo J B` must not
       change that);
     - otherwise J must exist and `imgcheck undo J B` must exit 0 and restore the
       original byte for byte (sha256).
With --undo-crash, also: repair completely, kill `imgcheck undo J B` before each of its
file-changing syscalls, then run undo again: it must restore the original.
Writes to stdout/stderr are crash points too (harmless: later than every file write).
strace counts injections per syscall and per thread; a note is printed when more than
one thread wrote. Prints per-kind point counts, the total, and `N passed, M failed`.
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep fixtures/ free of __pycache__
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fixtures'))
import build_fixtures as bf  # noqa: E402

TIMEOUT = 60
WRITE_SYSCALLS = ('write', 'pwrite64', 'pwritev', 'pwritev2', 'writev', 'ftruncate',
                  'truncate', 'fallocate', 'fsync', 'fdatasync', 'sync_file_range',
                  'rename', 'renameat', 'renameat2', 'unlink', 'unlinkat', 'link', 'linkat',
                  'copy_file_range', 'sendfile', 'msync')

# (kind, fixture, extra repair options)
KINDS = [
    ('leak fix', 'leak-several', []),
    ('refcount raise', 'corrupt-refcount-zero', []),
    ('refcount raise (refblock\'s own refcount 0)', 'repair-refblock-refcount-zero', []),
    ('COPIED fix', 'corrupt-l2-copied', []),
    ('dirty-bit clear', 'header-dirty-lazy', []),
    ('dirty bit + leak', 'repair-leak-dirty-lazy', []),
    ('corrupt-bit clear', 'header-corrupt-bit', []),
    ('refcount rebuild (reftable entry lost)', 'repair-reftable-entry-zeroed', []),
    ('refcount rebuild (2 refblocks, reserved bit)', 'repair-reftable-reserved-mid', []),
    ('refblock past EOF (file grows)', 'corrupt-refblock-past-eof', []),
    ('snapshot-table truncation', 'repair-snapshots-overcount', []),
    ('unmap past-EOF L2 entry', 'corrupt-l2-past-eof', ['--allow-data-loss']),
    ('delete broken snapshot', 'repair-snapshot-l1-unaligned-shared', ['--allow-data-loss']),
]

LINE = re.compile(r'^(\d+)\s+([a-z0-9_]+)\((.*)$')


def run(cmd, timeout=TIMEOUT):
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors='replace',
                           timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, '', 'TIMEOUT'
    except OSError as e:
        return 127, '', 'cannot run %s: %s' % (cmd[0], e)
    return p.returncode, p.stdout, p.stderr


def sha(path):
    if not os.path.exists(path):
        return None
    with open(path, 'rb') as f:
        return hashlib.sha256(f.read()).hexdigest()


def one_line(text, limit=200):
    t = ' / '.join(x for x in text.strip().splitlines() if x.strip())
    return t if len(t) <= limit else t[:limit] + '...'


def parse_trace(log):
    """({syscall: count}, {syscall: {tid: count}}, [(syscall, first arg)])."""
    counts, per_tid, calls = {}, {}, []
    with open(log, errors='replace') as f:
        for line in f:
            m = LINE.match(line)
            if not m or 'resumed>' in line:
                continue
            tid, sc, rest = m.groups()
            counts[sc] = counts.get(sc, 0) + 1
            per_tid.setdefault(sc, {}).setdefault(tid, 0)
            per_tid[sc][tid] += 1
            calls.append((sc, rest.split(', ', 1)[0]))
    return counts, per_tid, calls


def spread(n, cap):
    """Points 1..n, or `cap` of them spread evenly (first and last included)."""
    if cap is None or n <= cap:
        return list(range(1, n + 1))
    if cap == 1:
        return [n]
    return sorted({1 + round(i * (n - 1) / (cap - 1)) for i in range(cap)})


def trace_counts(cmd, log):
    rc, out, err = run(['strace', '-f', '-y', '-qq', '-o', log, '-e',
                        'trace=' + ','.join(WRITE_SYSCALLS)] + cmd)
    return rc, out, err, parse_trace(log)


def pick(counts, max_points):
    points = [(sc, n) for sc in sorted(counts) for n in range(1, counts[sc] + 1)]
    if max_points is not None and len(points) > max_points:
        points = [points[i - 1] for i in spread(len(points), max_points)]
    return points


def killed_run(cmd, sc, n):
    return run(['strace', '-f', '-qq', '-o', '/dev/null', '-e', 'trace=' + sc,
                '-e', 'inject=%s:signal=SIGKILL:when=%d' % (sc, n)] + cmd)


def crash_undo(imgcheck, opts, orig_sha, B, J, work, max_points, fresh):
    """Kill undo part-way, then undo again.  Return (points, failures)."""
    fails = []
    fresh()
    run([imgcheck, 'repair'] + opts + ['--journal', J, B])
    repaired = os.path.join(work, 'repaired.qcow2')
    shutil.copyfile(B, repaired)
    jsave = os.path.join(work, 'journal.save')
    shutil.copyfile(J, jsave)
    rc, out, err, (counts, _, _) = trace_counts([imgcheck, 'undo', J, B],
                                                os.path.join(work, 'undo.log'))
    if rc != 0 or sha(B) != orig_sha:
        return 0, ['undo of a complete repair: exit %s: %s' % (rc, one_line(out + err))]
    tried = 0
    for sc, n in pick(counts, max_points):
        shutil.copyfile(repaired, B)
        shutil.copyfile(jsave, J)
        killed_run([imgcheck, 'undo', J, B], sc, n)
        tried += 1
        urc, uout, uerr = run([imgcheck, 'undo', J, B])
        if sha(B) != orig_sha:
            fails.append('undo killed at %s #%d, undo again: exit %s, not restored: %s'
                         % (sc, n, urc, one_line(uout + uerr)))
    return tried, fails


def crash_kind(name, opts, fxdir, imgcheck, work, max_points, undo_crash=False):
    """Return (repair points, undo points, failures [str], notes [str], summary)."""
    orig = bf.image_path(fxdir, name)
    orig_sha = sha(orig)
    fails, notes = [], []
    B, J, log = os.path.join(work, 'B.qcow2'), os.path.join(work, 'B.journal'), \
        os.path.join(work, 'trace.log')

    def fresh():
        for f in (B, J):
            if os.path.exists(f):
                os.unlink(f)
        for f in os.listdir(work):
            if f.startswith('B.') and f != 'B.qcow2':
                os.unlink(os.path.join(work, f))
        shutil.copyfile(orig, B)

    # 1. the complete run, traced
    fresh()
    rc, out, err, (counts, per_tid, calls) = trace_counts(
        [imgcheck, 'repair'] + opts + ['--journal', J, B], log)
    if rc is None or sha(B) == orig_sha:
        return 0, 0, ['baseline repair exit %s did not change the image: %s'
                   % (rc, one_line(out + err))], notes, '-'
    multi = [sc for sc, t in per_tid.items() if len(t) > 1]
    if multi:
        notes.append('more than one thread calls %s: per-thread injection counts' % ','.join(multi))
    files = set()
    for sc, arg in calls:
        m = re.search(r'<([^>]*)>', arg) or re.search(r'"([^"]*)"', arg)
        if m and m.group(1).startswith('/') and not m.group(1).startswith('/dev/'):
            f = m.group(1)
            files.add('<dir>' if f.rstrip('/') == work else f.replace(work + '/', ''))
    files = sorted(files)
    summary = ', '.join('%s x%d' % (sc, n) for sc, n in sorted(counts.items()))
    if not os.path.exists(J):
        fails.append('complete run: no journal')
    else:
        urc, uout, uerr = run([imgcheck, 'undo', J, B])
        if urc != 0 or sha(B) != orig_sha:
            fails.append('complete run: undo exit %s, restored=%s: %s'
                         % (urc, sha(B) == orig_sha, one_line(uout + uerr)))

    # 2. one kill per (syscall, N)
    tried = intact = undone = 0
    for sc, n in pick(counts, max_points):
        fresh()
        rc, out, err = killed_run([imgcheck, 'repair'] + opts + ['--journal', J, B], sc, n)
        tried += 1
        where = '%s #%d' % (sc, n)
        if rc is None:
            fails.append('%s: timed out' % where)
            continue
        if rc not in (-9, 137):
            notes.append('%s: not killed (exit %s)' % (where, rc))
        if sha(B) == orig_sha:
            intact += 1
            if os.path.exists(J):
                urc, uout, uerr = run([imgcheck, 'undo', J, B])
                if sha(B) != orig_sha:
                    fails.append('%s: image was intact, undo (exit %s) changed it: %s'
                                 % (where, urc, one_line(uout + uerr)))
            continue
        if not os.path.exists(J):
            fails.append('%s: image modified and no journal' % where)
            continue
        urc, uout, uerr = run([imgcheck, 'undo', J, B])
        if urc != 0 or sha(B) != orig_sha:
            fails.append('%s: undo exit %s, restored=%s: %s'
                         % (where, urc, sha(B) == orig_sha, one_line(uout + uerr)))
        else:
            undone += 1
    summary += ' | after the kill: %d intact, %d restored by undo' % (intact, undone)
    undo_tried = 0
    if undo_crash:
        undo_tried, f = crash_undo(imgcheck, opts, orig_sha, B, J, work, max_points, fresh)
        summary += ' | undo killed at %d point(s)' % undo_tried
        fails += f
    if files:
        notes.insert(0, 'files written: ' + ', '.join(files[:6]))
    return tried, undo_tried, fails, notes, summary


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--max-points', type=int, help='at most N crash points per kind')
    ap.add_argument('--kinds', nargs='+', metavar='FIXTURE',
                    help='only these kinds (by fixture name)')
    ap.add_argument('--undo-crash', action='store_true',
                    help='also kill undo part-way and undo again')
    ap.add_argument('--keep', action='store_true')
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    if not os.access(imgcheck, os.X_OK):
        sys.exit('not executable: ' + imgcheck)
    if not shutil.which('strace'):
        sys.exit('strace not found')
    kinds = [k for k in KINDS if not a.kinds or k[1] in a.kinds]
    scratch = tempfile.mkdtemp(prefix='imgcheck-crash-')
    fxdir = os.path.join(scratch, 'fixtures')
    bf.build(fxdir, sorted({k[1] for k in kinds}))

    passed = failed = total = total_undo = 0
    for kind, name, opts in kinds:
        work = os.path.join(scratch, name + ''.join(opts))
        os.makedirs(work)
        tried, undo_tried, fails, notes, summary = crash_kind(name, opts, fxdir, imgcheck, work,
                                                   a.max_points, a.undo_crash)
        total += tried
        total_undo += undo_tried
        ok = not fails
        print('%s %s (%s%s): %d crash point(s); syscalls: %s' % (
            'PASS' if ok else 'FAIL', kind, name, ''.join(' ' + o for o in opts), tried,
            summary))
        for f in fails[:20]:
            print('    - ' + f)
        if len(fails) > 20:
            print('    - ... %d more' % (len(fails) - 20))
        for n in notes[:5]:
            print('    note: ' + n)
        passed += ok
        failed += not ok
    print('%d repair crash points in total%s' % (
        total, ' (+ %d undo crash points)' % total_undo if a.undo_crash else ''))
    print('%d passed, %d failed' % (passed, failed))
    if a.keep:
        print('scratch kept in ' + scratch, file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
