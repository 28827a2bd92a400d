#!/usr/bin/python3
"""Chain test: backing chains, --untrusted, image locks and `imgcheck info` (issue 3).

    run_chain.py --imgcheck PATH [--only NAME...] [--keep]

Builds the cases of fixtures/build_chains.py in a world-traversable temporary
directory, runs `imgcheck check --no-guest --output json ...` (or `imgcheck info`) on
each case's image, from the temporary directory (so a relative backing name resolved
against the working directory is not found), and checks the case's `expect` record:
exit code, required findings (slug, file, severity, message parts), absent slugs,
JSON checks, wall time, and per case: runs as nobody, under qemu-nbd, and under
strace (files never named, same files opened as for a plain image, no inet socket).
Every run has a 30 s timeout; no file of the case may change (sha256 before/after).
Prints `PASS|FAIL name: reason` per case and `N passed, M failed` last.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fixtures'))
import build_chains as bc  # noqa: E402

TIMEOUT = 30
ISSUE2_KEYS = ('filename', 'format', 'check-errors', 'corruptions', 'leaks', 'image-end-offset',
               'total-clusters', 'allocated-clusters', 'fragmented-clusters',
               'compressed-clusters', 'findings', 'chain')
FINDING_KEYS = ('code', 'slug', 'severity', 'message', 'image', 'count')
CHAIN_KEYS = ('filename', 'format', 'depth')
CHAIN_QCOW2_KEYS = ('virtual-size', 'file-size', 'check-errors', 'corruptions', 'leaks')
INFO_KEYS = ('filename', 'format', 'version', 'virtual-size', 'cluster-size', 'file-size',
             'host-allocated-bytes', 'host-free-bytes', 'refcount-bits', 'compression-type',
             'encryption', 'extended-l2', 'lazy-refcounts', 'corrupt', 'dirty', 'features',
             'header-extensions', 'snapshots', 'bitmaps', 'allocated-clusters',
             'total-clusters', 'image-end-offset', 'in-use', 'chain')


class Ctx:
    """Where things are: the temp root (cwd of every run), imgcheck copies."""

    def __init__(self, root, imgcheck):
        self.root = root
        self.imgcheck = imgcheck


# ---------------------------------------------------------------- running

def run(cmd, cwd):
    """(exit code or None on timeout, stdout, stderr, seconds)."""
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, errors='replace',
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        return None, '', '', time.monotonic() - t
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t


def command(ctx, c, image, output='json'):
    cmd = [ctx.imgcheck, c['cmd']] + (['--no-guest'] if c['cmd'] == 'check' else [])
    cmd += ['--output', output] + c['args'] + [image]
    return (bc.NOBODY + cmd) if c['expect'].get('user') else cmd


def sha256_tree(d):
    h = {}
    for root, _, files in os.walk(d):
        for f in files:
            p = os.path.join(root, f)
            if os.path.isfile(p):
                with open(p, 'rb') as fh:
                    h[p] = hashlib.sha256(fh.read()).hexdigest()
    return h


class Nbd:
    """qemu-nbd serving an image read-write (holds QEMU's locks); always stopped."""

    def __init__(self, image):
        self.tmp = tempfile.mkdtemp(prefix='imgcheck-nbd-')
        self.pid = None
        pidfile = os.path.join(self.tmp, 'pid')
        subprocess.run(['qemu-nbd', '--fork', '--persistent', '--pid-file', pidfile,
                        '-k', os.path.join(self.tmp, 'sock'), '-f', 'qcow2', image],
                       check=True, capture_output=True, timeout=30)
        with open(pidfile) as f:
            self.pid = int(f.read())

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
                for _ in range(100):
                    os.kill(self.pid, 0)
                    time.sleep(0.05)
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)


# ---------------------------------------------------------------- strace

SYSCALL = re.compile(r'^(?:\d+\s+)?(\w+)\(')
QUOTED = re.compile(r'"((?:[^"\\]|\\.)*)"')


def strace(ctx, cmd):
    """Run cmd under strace: (exit code, {'opens': set, 'names': set, 'inet': [lines]})."""
    fd, log = tempfile.mkstemp(prefix='imgcheck-strace-')
    os.close(fd)
    try:
        rc = run(['strace', '-f', '-qq', '-s', '4096', '-e', 'trace=%file,%network', '-o', log]
                 + cmd, ctx.root)[0]
        with open(log, errors='replace') as f:
            lines = f.read().splitlines()
    finally:
        os.unlink(log)
    r = {'opens': set(), 'names': set(), 'inet': []}
    for line in lines:
        m = SYSCALL.match(line)
        if not m:
            continue
        names = QUOTED.findall(line)
        if m.group(1) in ('socket', 'connect') and re.search(r'AF_INET6?\b', line):
            r['inet'].append(line.strip())
        if m.group(1) in ('socket', 'connect', 'bind', 'sendto', 'recvfrom', 'sendmsg'):
            continue
        r['names'].update(names)
        if m.group(1) in ('open', 'openat', 'openat2') and names:
            r['opens'].add(os.path.normpath(os.path.join(ctx.root, names[0])))
    return rc, r


def strace_problems(ctx, c, d, image):
    st = c['expect']['strace']
    cmd = command(ctx, c, image)
    rc, r = strace(ctx, cmd)
    if rc is None:
        return ['strace run took more than %d s' % TIMEOUT]
    problems = []
    for a in st.get('absent', []):
        hit = sorted(n for n in r['names'] if os.path.basename(n) == os.path.basename(a))
        if hit:
            problems.append('strace: %s named in a file syscall (%s)' % (a, ', '.join(hit)))
    if r['inet']:
        problems.append('strace: inet socket: ' + r['inet'][0][:120])
    if st.get('same_opens_as'):
        other = os.path.join(d, st['same_opens_as'])
        rc2, r2 = strace(ctx, command(ctx, c, other))
        mine = r['opens'] - {image}
        theirs = r2['opens'] - {other}
        if mine != theirs:
            problems.append('strace: opens differ from %s run: extra %s, missing %s' % (
                st['same_opens_as'], sorted(mine - theirs), sorted(theirs - mine)))
    return problems


# ---------------------------------------------------------------- checking

def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':'))


def short_ours(js, out):
    """Our JSON, findings as slug@file[severity] (messages of chain.*/datafile.* kept)."""
    if not isinstance(js, dict):
        return repr(out.strip()[:300])
    d = {k: v for k, v in js.items() if k not in ('findings', 'chain')}
    if isinstance(js.get('chain'), list):
        d['chain'] = [{k: e.get(k) for k in ('filename', 'format', 'depth', 'leaks', 'error')
                       if k in e} if isinstance(e, dict) else e for e in js['chain']]
    if isinstance(js.get('findings'), list):
        d['findings'] = ['%s@%s[%s]%s' % (f.get('slug'), os.path.basename(str(f.get('image'))),
                                          f.get('severity'),
                                          ' ' + f.get('message', '') if
                                          str(f.get('slug')).split('.')[0] in
                                          ('chain', 'datafile', 'untrusted') else '')
                         if isinstance(f, dict) else f for f in js['findings']]
    s = compact(d)
    return s if len(s) < 1200 else s[:1200] + '...'


def same_file(ctx, reported, d, rel):
    return os.path.realpath(os.path.join(ctx.root, str(reported))) == bc.rp(d, rel)


def finding_problems(ctx, e, d, js):
    problems = []
    findings = js.get('findings') if isinstance(js.get('findings'), list) else []
    bad = [f for f in findings
           if not isinstance(f, dict) or any(k not in f for k in FINDING_KEYS)]
    if bad:
        problems.append('finding lacks a key: ' + compact(bad[0])[:200])
    findings = [f for f in findings if isinstance(f, dict)]
    for w in e['want']:
        same = [f for f in findings if f.get('slug') == w['slug']]
        ok = [f for f in same
              if (w['image'] is None or same_file(ctx, f.get('image'), d, w['image']))
              and (w['severity'] is None or f.get('severity') == w['severity'])
              and all(t in str(f.get('message', '')) for t in w['text'])]
        if not same:
            problems.append('missing ' + w['slug'])
        elif not ok:
            problems.append('%s not as wanted (image %s, severity %s, message has %s)' % (
                w['slug'], w['image'], w['severity'], w['text']))
    for pat in e['absent']:
        hit = sorted({f.get('slug') for f in findings
                      if fnmatch.fnmatchcase(str(f.get('slug')), pat)})
        if hit:
            problems.append('unexpected ' + ','.join(hit))
    return problems


def json_problems(c, d, js):
    problems = []
    keys = ISSUE2_KEYS if c['cmd'] == 'check' else INFO_KEYS
    missing = [k for k in keys if k not in js]
    if missing:
        problems.append('JSON lacks ' + ','.join(missing))
    chain = js.get('chain') if c['cmd'] == 'check' and isinstance(js.get('chain'), list) else []
    for ent in [x for x in chain if isinstance(x, dict)]:
        need = CHAIN_KEYS + (CHAIN_QCOW2_KEYS if ent.get('format') == 'qcow2' else ())
        lack = [k for k in need if k not in ent]
        if lack:
            problems.append('chain entry lacks ' + ','.join(lack))
            break
    for label, fn in c['expect']['json']:
        try:
            ok = fn(js, d)
        except Exception as ex:  # a missing key or wrong type is a failed check
            ok = False
            label += ' (%s: %s)' % (type(ex).__name__, ex)
        if not ok:
            problems.append('JSON: not ' + label)
    return problems


def timing_problems(ctx, c, d, image, seconds):
    e = c['expect']
    problems = []
    if e.get('max_seconds') and seconds > e['max_seconds']:
        problems.append('took %.2f s, limit %g s' % (seconds, e['max_seconds']))
    if e.get('scale'):
        half = os.path.join(d, e['scale'])
        full_t = min(run(command(ctx, c, image), ctx.root)[3] for _ in range(3))
        half_t = min(run(command(ctx, c, half), ctx.root)[3] for _ in range(3))
        if full_t > 3 * half_t + 0.3:
            problems.append('not linear: %.3f s for the chain vs %.3f s for %s'
                            % (full_t, half_t, e['scale']))
    return problems


def check_case(ctx, c):
    """Return (ok, reason, details)."""
    e = c['expect']
    d = bc.case_dir(ctx.root, c['name'])
    image = os.path.join(d, c['image'])
    output = e.get('output', 'json')
    nbd = None
    try:
        if e.get('nbd'):
            nbd = Nbd(image)
        before = sha256_tree(d)
        rc, out, err, seconds = run(command(ctx, c, image, output), ctx.root)
        changed = sha256_tree(d) != before
    finally:
        if nbd:
            nbd.stop()
    js = None
    if output == 'json':
        try:
            js = json.loads(out)
        except ValueError:
            pass
    details = ['ours: exit %s (%.2f s) %s %s' % (
        rc, seconds, short_ours(js, out) if output == 'json' else repr(out[:300]),
        repr(err.strip()[:300]) if err.strip() else '')]
    if rc is None:
        return False, 'imgcheck took more than %d s' % TIMEOUT, details
    if rc < 0 or rc >= 128:
        return False, 'imgcheck crashed (exit %d)' % rc, details
    problems = []
    if changed:
        problems.append('a file of the case changed')
    if rc != e['exit']:
        problems.append('exit %d, want %d' % (rc, e['exit']))
    if output == 'json':
        if isinstance(js, dict):
            problems += finding_problems(ctx, e, d, js) + json_problems(c, d, js)
        elif e['want'] or e['json'] or c['cmd'] == 'info' or rc in (0, 2, 3):
            problems.append('no JSON object on stdout')
    missing = [s for s in e.get('stdout', []) if s not in out]
    if missing:
        problems.append('output lacks ' + ', '.join(missing))
    problems += timing_problems(ctx, c, d, image, seconds)
    if e.get('strace'):
        problems += strace_problems(ctx, c, d, image)
    if problems:
        return False, '; '.join(problems), details
    return True, 'ok', []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--only', nargs='+', metavar='NAME')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    a = ap.parse_args()
    if not os.access(a.imgcheck, os.X_OK):
        sys.exit('not executable: ' + a.imgcheck)
    root = tempfile.mkdtemp(prefix='imgcheck-chain-')
    os.chmod(root, 0o755)                         # nobody must reach the fixtures
    try:
        # a copy nobody can run, wherever the build tree is
        os.mkdir(os.path.join(root, 'bin'))
        imgcheck = os.path.join(root, 'bin', 'imgcheck')
        shutil.copy(a.imgcheck, imgcheck)
        os.chmod(imgcheck, 0o755)
        ctx = Ctx(root, imgcheck)
        cases = bc.build(root, a.only)
        passed = failed = 0
        for c in cases:
            ok, reason, details = check_case(ctx, c)
            print('%s %s: %s' % ('PASS' if ok else 'FAIL', c['name'], reason))
            for line in details:
                print('    ' + line)
            passed += ok
            failed += not ok
        print('%d passed, %d failed' % (passed, failed))
    finally:
        if a.keep:
            print('kept ' + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
