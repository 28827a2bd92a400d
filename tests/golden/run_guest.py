#!/usr/bin/python3
"""Guest test: imgcheck's guest checks (issue 5) against realistic guest disks.

    run_guest.py --imgcheck PATH [--fixtures DIR] [--only NAME...] [--jobs N]
                 [--verify-fixtures] [--no-bench] [--keep] [--timeout S]

Builds the cases of fixtures/build_guests.py (unless --fixtures DIR already holds them,
built by the same case definitions; otherwise they are built into DIR), runs
`imgcheck check --output json DISKS...` per case with LIBGUESTFS_BACKEND=direct
LIBGUESTFS_BACKEND_SETTINGS=force_tcg and a 180 s timeout, and checks the case's
expectations (see the build_guests.py docstring): exit code, `guest.ran` true and
`guest.os.distro` on the first image's JSON object, required findings (slug, severity,
guest file, evidence, fix, line, disk) in any of the JSON objects, absent slugs, no other
error/warning (strict cases), and disk images unchanged (sha256 before/after).
Prints `PASS|FAIL name (secs): reasons` per case, then one extra check `os-version`
(guest.os.version of every case equals libguestfs's major.minor: 7.9 for CentOS 7.9.2009 and
RHEL 7.9, 12.2 for Debian 12.2), and `N passed, M failed` last; exit 1 on any failure.

Then (unless --no-bench) measures, on one fixture, a bare `guestfish --ro -a IMAGE run`
against `imgcheck check` (and `--no-guest`): the guest phase should cost at most the
appliance start + 5 s. Printed only; bench/guest_speed.sh does it with several runs.
"""
import argparse
import fnmatch
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fixtures'))
import build_guests as bg  # noqa: E402

ENV = dict(os.environ, LIBGUESTFS_BACKEND='direct', LIBGUESTFS_BACKEND_SETTINGS='force_tcg')
TIMEOUT = 180


def run(cmd, timeout):
    """(exit code or None on timeout, stdout, stderr, seconds)."""
    t = time.monotonic()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors='replace', env=ENV,
                           timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode(errors='replace') if isinstance(e.stdout, bytes) else (e.stdout or '')
        return None, out, '', time.monotonic() - t
    return p.returncode, p.stdout, p.stderr, time.monotonic() - t


def json_objects(text):
    """Every JSON object in text (one pretty-printed object, or JSON Lines)."""
    dec, objs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return objs
        obj, i = dec.raw_decode(text, i)
        objs.append(obj)


def sha256(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for b in iter(lambda: f.read(1 << 20), b''):
            h.update(b)
    return h.hexdigest()


def short(f):
    keys = ('slug', 'severity', 'file', 'line', 'evidence', 'fix', 'disk')
    return '{%s}' % ', '.join('%s=%r' % (k, f[k]) for k in keys if k in f)


def matches(f, w, files):
    """'' if finding f satisfies want w, else why not."""
    why = []
    if w.get('severity') and f.get('severity') != w['severity']:
        why.append('severity %s' % f.get('severity'))
    for k in ('file', 'evidence', 'fix'):
        if w.get(k) and w[k] not in str(f.get(k, '')):
            why.append('%s %r lacks %r' % (k, f.get(k), w[k]))
    if 'line' in w and 'line' in f and f['line'] != w['line']:
        why.append('line %s, expected %s' % (f['line'], w['line']))
    if 'disk' in w:
        d = f.get('disk') or f.get('_object')
        if os.path.abspath(str(d)) != files[w['disk']]:
            why.append('disk %s, expected %s' % (d, os.path.basename(files[w['disk']])))
    return '; '.join(why)


def domain_xml(c, files, outdir):
    """A domain attaching `files` as c['domain'] says: virt-install --print-xml (test driver,
    no daemon), then edited (domain type, machine type, firmware) as a user edits a domain."""
    import xml.etree.ElementTree as ET
    spec = c['domain']
    cmd = ['virt-install', '--connect', 'test:///default', '--print-xml', '--name', c['name'],
           '--memory', '1024', '--import', '--osinfo', 'detect=off,name=generic',
           '--noautoconsole', '--graphics', 'none']
    for f in files:
        cmd += ['--disk', 'path=%s,driver.type=qcow2,bus=%s' % (f, spec['bus'])]
    if spec.get('controller'):
        cmd += ['--controller', 'type=scsi,model=%s' % spec['controller']]
    p = subprocess.run(cmd, capture_output=True, text=True)
    if p.returncode != 0:
        raise RuntimeError('virt-install: ' + p.stderr.strip()[-300:])
    root = ET.fromstring(p.stdout)
    root.set('type', 'kvm')
    os_ = root.find('os')
    if spec.get('machine'):
        os_.find('type').set('machine', spec['machine'])
    if spec.get('firmware') == 'efi':
        os_.set('firmware', 'efi')
    path = os.path.join(outdir, c['name'] + '.domain.xml')
    ET.ElementTree(root).write(path)
    return path


def check_case(c, files, imgcheck, timeout):
    """(ok, seconds, [reasons], [notes])"""
    before = {f: sha256(f) for f in files}
    if c.get('domain'):  # the disks as the domain attaches them
        target = ['--domain-xml', domain_xml(c, files, os.path.dirname(files[0]))]
    else:
        target = files
    rc, out, err, secs = run([imgcheck, 'check', '--output', 'json'] + target, timeout)
    bad, notes = [], []
    if rc is None:
        return False, secs, ['timed out after %d s' % timeout], notes
    if rc >= 128 or rc < 0:
        bad.append('crashed (exit %d): %s' % (rc, err.strip()[-300:]))
    try:
        objs = json_objects(out)
    except ValueError as e:
        return False, secs, ['stdout is not JSON (%s): %r' % (e, out[:200])], notes
    if not objs:
        return False, secs, ['no JSON output; stderr: %s' % err.strip()[-300:]], notes
    if rc != c['exit']:
        bad.append('exit %d, expected %d' % (rc, c['exit']))
    first = next((o for o in objs if os.path.abspath(str(o.get('filename', ''))) == files[0]), objs[0])
    g = first.get('guest')
    if not isinstance(g, dict):
        bad.append('no "guest" object on the first image')
    else:
        if g.get('ran') is not True:
            bad.append('guest.ran=%r reason=%r' % (g.get('ran'), g.get('reason')))
        os_ = g.get('os') or {}
        if g.get('ran') and c['os'] and os_.get('distro') != c['os']:
            bad.append('guest.os.distro=%r, expected %r' % (os_.get('distro'), c['os']))
        if g.get('ran') and c.get('os_version') and os_.get('version') != c['os_version']:
            notes.append('VERSION %r, expected %r' % (os_.get('version'), c['os_version']))
        notes.append('backend=%s launch=%ss' % (g.get('backend'), g.get('launch-seconds')))
    findings = []
    for o in objs:
        for f in o.get('findings') or []:
            findings.append(dict(f, _object=os.path.abspath(str(o.get('filename', '')))))
    slugs = {f.get('slug') for f in findings}
    for w in c['want']:
        same = [f for f in findings if f.get('slug') == w['slug']]
        if not same:
            bad.append('missing %s' % w['slug'])
            continue
        whys = [matches(f, w, files) for f in same]
        if all(whys):
            bad.append('%s found but %s' % (w['slug'], whys[0]))
    for grp in c.get('want_any', []):
        if not slugs & set(grp):
            bad.append('none of %s' % ' / '.join(grp))
    for pat in c['absent']:
        hit = sorted(s for s in slugs if s and fnmatch.fnmatch(s, pat))
        if hit:
            bad.append('unexpected %s' % ', '.join(hit))
    if c.get('allow') is not None:
        ok_pats = [w['slug'] for w in c['want']] + [s for grp in c.get('want_any', []) for s in grp] \
            + ['hygiene.*'] + c['allow']
        for f in findings:
            if f.get('severity') in ('error', 'warning') and \
                    not any(fnmatch.fnmatch(str(f.get('slug')), p) for p in ok_pats):
                if not any(('unexpected %s' % f.get('slug')) in b for b in bad):
                    bad.append('unexpected %s: %s' % (short(f), str(f.get('message'))[:300]))
    after = {f: sha256(f) for f in files}
    changed = [os.path.basename(f) for f in files if before[f] != after[f]]
    if changed:
        bad.append('image changed: %s' % ', '.join(changed))
    notes.append('findings: ' + ('; '.join(short(f) for f in findings) or 'none'))
    return not bad, secs, bad, notes


def fixtures_ok(d, sel):
    """True when d/manifest.json was written by this build_guests.py and holds every
    selected case's disks (expectations always come from the current case list)."""
    try:
        with open(os.path.join(d, 'manifest.json')) as f:
            man = json.load(f)
    except (OSError, ValueError):
        return False
    if man.get('builder_sha256') != bg.builder_fingerprint():
        return False
    have = {c['name'] for c in man.get('cases', [])}
    return all(c['name'] in have and all(os.path.exists(os.path.join(d, x + '.qcow2')) for x in c['disks'])
               for c in sel)


def timed(cmd, timeout):
    rc, _, err, secs = run(cmd, timeout)
    return rc, secs, err


def bench(imgcheck, image, timeout):
    """bare appliance launch vs imgcheck check (guest) vs imgcheck check --no-guest."""
    r1 = timed(['guestfish', '--ro', '--format=qcow2', '-a', image, 'run'], timeout)
    r2 = timed([imgcheck, 'check', '--output', 'json', image], timeout)
    r3 = timed([imgcheck, 'check', '--no-guest', '--output', 'json', image], timeout)
    budget = r1[1] + 5
    verdict = 'OK' if r2[0] is not None and r2[1] <= budget else 'OVER BUDGET'
    print('speed %s: guestfish --ro -a IMAGE run %.1f s (rc %s); imgcheck check %.1f s (rc %s); '
          '--no-guest %.2f s; guest phase ~%.1f s; budget launch+5 = %.1f s: %s'
          % (os.path.basename(image), r1[1], r1[0], r2[1], r2[0], r3[1], r2[1] - r3[1], budget, verdict))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--fixtures', help='fixture dir (used if it holds the cases, else built there)')
    ap.add_argument('--only', nargs='+', metavar='NAME')
    ap.add_argument('--jobs', type=int, default=min(2, os.cpu_count() or 1),
                    help='imgcheck runs in parallel (default: min(2, cores))')
    ap.add_argument('--timeout', type=int, default=TIMEOUT)
    ap.add_argument('--verify-fixtures', action='store_true',
                    help='when building, also run the read-only inspect-os check (~2 min)')
    ap.add_argument('--no-bench', action='store_true')
    ap.add_argument('--keep', action='store_true', help='keep the temporary fixture dir')
    ap.add_argument('-v', '--verbose', action='store_true', help='print every finding of every case')
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    sel = [c for c in bg.cases() if not a.only or any(fnmatch.fnmatch(c['name'], o) for o in a.only)]
    if not sel:
        print('no case matches %s' % a.only)
        return 2
    tmp = None
    d = a.fixtures
    if not d:
        tmp = d = tempfile.mkdtemp(prefix='imgcheck-guest-')
        os.chmod(d, 0o755)  # domain cases: the qemu user must be able to search it
    d = os.path.abspath(d)
    try:
        if not fixtures_ok(d, sel):
            t = time.monotonic()
            man = bg.run_build(d, [c['name'] for c in sel], do_verify=a.verify_fixtures,
                               log=lambda m: print('  ' + m, flush=True))
            print('fixtures built in %.1f s into %s' % (time.monotonic() - t, d), flush=True)
            for p in man['problems']:
                print('FIXTURE PROBLEM: ' + p)
        else:
            print('using fixtures in %s' % d, flush=True)
        results = {}
        lock = threading.Lock()
        queue = list(sel)

        def worker():
            while True:
                with lock:
                    if not queue:
                        return
                    c = queue.pop(0)
                files = [os.path.join(d, x + '.qcow2') for x in c['disks']]
                try:
                    r = check_case(c, files, imgcheck, a.timeout)
                except Exception as e:          # noqa: BLE001 - report, keep going
                    r = (False, 0.0, ['runner error: %r' % e], [])
                with lock:
                    results[c['name']] = r
                    ok, secs, why, notes = r
                    print('%s %s (%.1f s)%s' % ('PASS' if ok else 'FAIL', c['name'], secs,
                                               (': ' + '; '.join(why)) if why else ''), flush=True)
                    if a.verbose:
                        for n in notes:
                            print('    ' + n, flush=True)
        ts = [threading.Thread(target=worker) for _ in range(max(1, a.jobs))]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        npass = sum(1 for r in results.values() if r[0])
        ntotal = len(sel)
        # guest.os.version vs libguestfs inspect-get-major/minor-version: one check for all cases,
        # so a version mismatch does not hide the per-case results
        vers = ['%s %s' % (n, x[8:]) for n, r in sorted(results.items()) for x in r[3] if x.startswith('VERSION ')]
        ntotal += 1
        if vers:
            print('FAIL os-version (guest.os.version = libguestfs major.minor): ' + '; '.join(vers))
        else:
            npass += 1
            print('PASS os-version (guest.os.version = libguestfs major.minor)')
        if not a.no_bench:
            name = next((c['disks'][0] for c in sel if c['name'] == 'debian-clean'), sel[0]['disks'][0])
            bench(imgcheck, os.path.join(d, name + '.qcow2'), a.timeout)
        print('%d passed, %d failed' % (npass, ntotal - npass))
        return 0 if npass == ntotal else 1
    finally:
        if tmp and not a.keep:
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp:
            print('fixtures kept in %s' % tmp)


if __name__ == '__main__':
    sys.exit(main())
