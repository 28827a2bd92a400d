#!/usr/bin/python3
"""Golden agreement test: imgcheck versus `qemu-img check`.

    run_golden.py --imgcheck PATH [--fixtures DIR] [--no-build] [--only NAME...]

Builds the fixtures of fixtures/build_fixtures.py (into a temporary directory
unless --fixtures is given; --no-build reuses the images already in DIR), runs
`qemu-img check --output=json IMG` and `imgcheck check --no-guest --output json IMG`
on each, and compares them according to the case's `expect` record:

  agree    same exit code; when qemu printed JSON: same leaks, corruptions non-zero
           exactly when qemu's is, same allocated-clusters (missing key = 0), and our
           JSON has every contract key;
  exit     (bad input) same exit code, and some output;
  differs  our exit code is the case's `exit`; the reason is printed.
Every kind: listed slugs must be among our findings; imgcheck must not crash
(signal or exit >= 128), take more than 10 s, or modify the image (sha256).
A qemu exit code other than the case's `qemu` is reported as fixture drift.
Prints `PASS|FAIL name: reason` per case and `N passed, M failed` last.
"""
import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep fixtures/ free of __pycache__
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fixtures'))
import build_fixtures as bf  # noqa: E402

TIMEOUT = 10
CONTRACT_KEYS = ('filename', 'format', 'check-errors', 'corruptions', 'leaks',
                 'image-end-offset', 'total-clusters', 'allocated-clusters',
                 'fragmented-clusters', 'compressed-clusters', 'findings')
FINDING_KEYS = ('code', 'slug', 'severity', 'message', 'image', 'count')


def sha256_files(paths):
    h = {}
    for p in paths:
        with open(p, 'rb') as f:
            h[p] = hashlib.sha256(f.read()).hexdigest()
    return h


def parse_json(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def run(cmd, cwd, timeout):
    """(exit code or None on timeout, stdout, stderr)."""
    try:
        p = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True,
                           errors='replace', timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, '', ''
    return p.returncode, p.stdout, p.stderr


def compact(obj):
    return json.dumps(obj, sort_keys=True, separators=(',', ':'))


def short_ours(js, out):
    """Our JSON without the finding messages (slugs only), or the raw output."""
    if not isinstance(js, dict):
        return repr(out.strip()[:300])
    d = {k: v for k, v in js.items() if k != 'findings'}
    f = js.get('findings')
    if isinstance(f, list):
        d['findings'] = [x.get('slug') if isinstance(x, dict) else x for x in f]
    return compact(d)


def check_case(c, outdir, imgcheck):
    """Return (ok, reason, details)."""
    e, name = c['expect'], c['name']
    img = bf.image_path(outdir, name)
    q_rc, q_out, q_err = run(['qemu-img', 'check', '--output=json', img], outdir, 120)
    q_js = parse_json(q_out)
    files = bf.case_files(outdir, name)
    before = sha256_files(files)
    rc, out, err = run([imgcheck, 'check', '--no-guest', '--output', 'json', img],
                       outdir, TIMEOUT)
    js = parse_json(out)
    details = ['qemu: exit %s %s %s' % (q_rc, compact(q_js) if q_js else '',
                                        '' if q_js else repr(q_err.strip()[:300])),
               'ours: exit %s %s %s' % (rc, short_ours(js, out),
                                        repr(err.strip()[:300]) if err.strip() else '')]
    problems = []
    if q_rc != e['qemu']:
        problems.append('fixture drift: qemu-img check exit %s, case expects %d'
                        % (q_rc, e['qemu']))
    if rc is None:
        return False, 'imgcheck took more than %d s' % TIMEOUT, details
    if rc < 0 or rc >= 128:
        return False, 'imgcheck crashed (exit %d)' % rc, details
    if sha256_files(files) != before:
        problems.append('imgcheck modified the image')

    if isinstance(js, dict):
        missing = [k for k in CONTRACT_KEYS if k not in js]
        if missing:
            problems.append('JSON lacks ' + ','.join(missing))
        findings = js.get('findings') if isinstance(js.get('findings'), list) else []
        bad = [f for f in findings
               if not isinstance(f, dict) or any(k not in f for k in FINDING_KEYS)]
        if bad:
            problems.append('finding lacks a key: ' + compact(bad[0]))
        slugs = {f.get('slug') for f in findings if isinstance(f, dict)}
    else:
        slugs = set()

    kind = e['kind']
    want_rc = e['exit'] if kind == 'differs' else q_rc
    if rc != want_rc:
        problems.append('exit %d, want %s' % (rc, want_rc))
    if kind == 'exit' and not (out.strip() or err.strip()):
        problems.append('no output at all')
    if kind == 'agree' and isinstance(q_js, dict):
        if not isinstance(js, dict):
            problems.append('no JSON object on stdout')
        else:
            for key in ('leaks', 'allocated-clusters'):
                if js.get(key, 0) != q_js.get(key, 0):
                    problems.append('%s %s, qemu %s' % (key, js.get(key, 0), q_js.get(key, 0)))
            if bool(js.get('corruptions', 0)) != bool(q_js.get('corruptions', 0)):
                problems.append('corruptions %s, qemu %s' % (js.get('corruptions', 0),
                                                             q_js.get('corruptions', 0)))
    lacking = [s for s in e['slugs'] if s not in slugs]
    if lacking:
        problems.append('missing slug(s) ' + ','.join(lacking))

    if problems:
        return False, '; '.join(problems), details
    if kind == 'differs':
        return True, 'differs on purpose: ' + e['reason'], []
    return True, kind, []


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--fixtures', help='build (or with --no-build, reuse) images here')
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--only', nargs='+', metavar='NAME')
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    if not os.access(imgcheck, os.X_OK):
        sys.exit('not executable: ' + imgcheck)
    if a.no_build and not a.fixtures:
        sys.exit('--no-build needs --fixtures')

    tmp = None
    if a.fixtures:
        outdir = os.path.abspath(a.fixtures)
    else:
        tmp = tempfile.TemporaryDirectory(prefix='imgcheck-golden-')
        outdir = tmp.name
    cases = bf.select(a.only) if a.no_build else bf.build(outdir, a.only)

    passed = failed = 0
    for c in cases:
        ok, reason, details = check_case(c, outdir, imgcheck)
        print('%s %s: %s' % ('PASS' if ok else 'FAIL', c['name'], reason))
        for d in details:
            print('    ' + d)
        passed += ok
        failed += not ok
    print('%d passed, %d failed' % (passed, failed))
    if tmp:
        tmp.cleanup()
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
