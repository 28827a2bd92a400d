#!/usr/bin/python3
"""Reports test: `--output junit|sarif`, batches with -j, and `--policy` (issue 6).

    run_reports.py --imgcheck PATH [--schemas DIR] [--guest auto|yes|no] [--keep]

Builds clean-c64k, leak-one and corrupt-refcount-zero with fixtures/build_fixtures.py, plus
images made with qemu-img for the policy rules (compat 0.10, backing chains, a snapshot, a
bitmap, LUKS encryption, a large virtual size, 2 MiB clusters), a raw image and one with
XML-hostile characters and invalid UTF-8 in its name. Checks:
  - JUnit output validates with `xmllint --noout --schema DIR/junit.xsd` and SARIF output
    against DIR/sarif-schema-2.1.0.json (python3-jsonschema), for every kind of image and for
    batches; their content matches the image (failures, levels, locations, rules);
  - batches: JSON Lines in argument order, the worst exit code, -j 1 and -j 2 give the same
    reports, nothing on stderr when it is not a terminal;
  - policies: each rule violated and satisfied, invalid TOML and unknown keys (exit 1, one
    line naming the line, nothing checked), severity overrides and ignores changing the exit;
  - guest-broken images (fixtures/build_guests.py, needs guestfish; --guest auto runs them
    when guestfish is installed): reports validate, guest findings carry their file and line,
    and [guest] fstab_require_stable_names makes fstab.raw-device an error.
DIR defaults to <repo>/tests/schemas. Prints `PASS|FAIL name: reason` per case and
`N passed, M failed` last.
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

import jsonschema

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
TIMEOUT = 120
BASE_FIXTURES = ['clean-c64k', 'leak-one', 'corrupt-refcount-zero']
GUEST_FIXTURES = ['centos7-vda1']


class Failed(Exception):
    pass


def expect(cond, what):
    if not cond:
        raise Failed(what)


class Env:
    def __init__(self, imgcheck, schemas, root):
        self.imgcheck = imgcheck
        self.root = root
        self.xsd = os.path.join(schemas, 'junit.xsd')
        with open(os.path.join(schemas, 'sarif-schema-2.1.0.json')) as f:
            schema = json.load(f)
        self.sarif = jsonschema.validators.validator_for(schema)(schema)

    def path(self, name):
        return os.path.join(self.root, name)

    def run(self, args, images, guest=False):
        """(exit code, stdout, stderr) of `imgcheck check ARGS IMAGES`, run in the root."""
        cmd = [self.imgcheck, 'check'] + ([] if guest else ['--no-guest']) + args + images
        p = subprocess.run(cmd, cwd=self.root, capture_output=True, timeout=TIMEOUT * 5)
        return p.returncode, p.stdout, p.stderr.decode(errors='replace')

    def junit(self, images, args=(), guest=False):
        """Runs --output junit, validates it; (exit code, parsed root)."""
        rc, out, err = self.run(['--output', 'junit'] + list(args), images, guest)
        xml = os.path.join(self.root, 'report.xml')
        with open(xml, 'wb') as f:
            f.write(out)
        p = subprocess.run(['xmllint', '--noout', '--schema', self.xsd, xml],
                           capture_output=True, text=True)
        expect(p.returncode == 0, 'junit invalid: ' + p.stderr.strip()[-600:])
        return rc, ET.fromstring(out)

    def sarif_log(self, images, args=(), guest=False):
        """Runs --output sarif, validates it; (exit code, log)."""
        rc, out, err = self.run(['--output', 'sarif'] + list(args), images, guest)
        log = json.loads(out)
        errors = sorted(self.sarif.iter_errors(log), key=lambda e: list(e.path))
        expect(not errors, 'sarif invalid: %s at %s' % (
            errors[0].message[:300], list(errors[0].path)) if errors else '')
        return rc, log

    def json_lines(self, images, args=()):
        rc, out, err = self.run(['--output', 'json'] + list(args), images)
        if len(images) == 1:  # one image: one indented object
            return rc, [json.loads(out)]
        return rc, [json.loads(line) for line in out.decode().splitlines()]

    def policy(self, text, name='p.toml'):
        path = self.path(name)
        with open(path, 'w') as f:
            f.write(text)
        return name


# ---------------------------------------------------------------- images

def qemu_img(*args):
    # QEMU's LUKS key derivation times itself and fails at random under load ("Unable to get
    # accurate CPU usage"): retry, as fixtures/build_fixtures.py does.
    for _ in range(30):
        p = subprocess.run(['qemu-img'] + list(args), capture_output=True, text=True,
                           timeout=TIMEOUT)
        if p.returncode == 0 or 'accurate CPU usage' not in p.stderr:
            break
    if p.returncode != 0:
        raise Failed('qemu-img %s: %s' % (' '.join(args), p.stderr.strip()))


def build_images(env):
    """The fixture images and the policy images, all in env.root."""
    subprocess.run([sys.executable, os.path.join(REPO, 'fixtures', 'build_fixtures.py'),
                    os.path.join(env.root, 'fx'), '--only'] + BASE_FIXTURES,
                   check=True, capture_output=True, timeout=TIMEOUT * 3)
    for n in BASE_FIXTURES:
        os.rename(os.path.join(env.root, 'fx', n + '.qcow2'), env.path(n + '.qcow2'))
    p = env.path
    qemu_img('create', '-f', 'qcow2', p('v3.qcow2'), '64M')
    qemu_img('create', '-f', 'qcow2', '-o', 'compat=0.10', p('v2.qcow2'), '64M')
    qemu_img('create', '-f', 'qcow2', '-b', 'v3.qcow2', '-F', 'qcow2', p('overlay.qcow2'))
    qemu_img('create', '-f', 'qcow2', '-b', 'overlay.qcow2', '-F', 'qcow2', p('overlay2.qcow2'))
    qemu_img('create', '-f', 'qcow2', p('snap.qcow2'), '64M')
    qemu_img('snapshot', '-c', 's1', p('snap.qcow2'))
    qemu_img('create', '-f', 'qcow2', p('bitmap.qcow2'), '64M')
    qemu_img('bitmap', '--add', p('bitmap.qcow2'), 'b0')
    qemu_img('create', '-f', 'qcow2', '--object', 'secret,id=s0,data=imgcheck',
             '-o', 'encrypt.format=luks,encrypt.key-secret=s0', p('luks.qcow2'), '64M')
    qemu_img('create', '-f', 'qcow2', p('big.qcow2'), '300G')
    qemu_img('create', '-f', 'qcow2', '-o', 'cluster_size=2M', p('c2m.qcow2'), '64M')
    qemu_img('create', '-f', 'raw', p('disk.raw'), '1M')
    # A name no report may pass through raw: markup, a control character, invalid UTF-8.
    shutil.copy(p('leak-one.qcow2'), os.path.join(env.root.encode(), b'we&<ir>d"\'\x01\xff.qcow2'))


WEIRD = 'we&<ir>d"\'\x01\udcff.qcow2'  # the same name as Python passes it (surrogateescape)


# ---------------------------------------------------------------- report checks

def suites(root):
    expect(root.tag == 'testsuites', 'root element is %s' % root.tag)
    return root.findall('testsuite')


def case_names(suite):
    return [(c.get('classname').rsplit('.', 1)[-1], c.get('name')) for c in suite.findall('testcase')]


def sarif_run(log):
    run = log['runs'][0]
    rules = run['tool']['driver']['rules']
    ids = [r['id'] for r in rules]
    expect(len(ids) == len(set(ids)) and len(ids) > 100, 'rules: %d ids, unique %d' % (
        len(ids), len(set(ids))))
    for r in run['results']:
        expect(ids[r['ruleIndex']] == r['ruleId'], 'ruleIndex of %s' % r['ruleId'])
        uri = r['locations'][0]['physicalLocation']['artifactLocation']['uri']
        expect(uri and not uri.startswith('/'), 'uri %r' % uri)
    return run


def t_clean(env):
    rc, root = env.junit(['clean-c64k.qcow2'])
    expect(rc == 0, 'exit %d' % rc)
    (s,) = suites(root)
    expect(s.get('name') == 'clean-c64k.qcow2' and s.get('failures') == '0', 'suite attrs')
    fams = [f for f, _ in case_names(s)]
    for fam in ('header', 'l1-l2', 'refcounts', 'layout', 'snapshots', 'bitmaps', 'chain'):
        expect(fam in fams, 'family %s missing: %s' % (fam, fams))
    expect(s.find('testcase/failure') is None, 'a failure in a clean image')
    rc, log = env.sarif_log(['clean-c64k.qcow2'])
    run = sarif_run(log)
    expect(rc == 0 and run['results'] == [], 'results %s' % run['results'])
    levels = {r['id']: r['defaultConfiguration']['level'] for r in run['tool']['driver']['rules']}
    expect(levels['refcount.leak'] == 'warning' and levels['refcount.too-low'] == 'error' and
           levels['policy.violation'] == 'error', 'default levels')
    return 'valid, no failures, no results'


def t_leaky(env):
    rc, root = env.junit(['leak-one.qcow2'])
    expect(rc == 3, 'exit %d' % rc)
    (s,) = suites(root)
    fails = s.findall('testcase/failure')
    expect([f.get('type') for f in fails] == ['refcount.leak'], 'failures %s' % fails)
    expect(s.get('failures') == '1', 'failures=%s' % s.get('failures'))
    rc, log = env.sarif_log(['leak-one.qcow2'])
    (r,) = sarif_run(log)['results']
    region = r['locations'][0]['physicalLocation']['region']
    expect(r['ruleId'] == 'refcount.leak' and r['level'] == 'warning', str(r))
    expect(region.get('byteOffset') == 0x90000 and region['startLine'] == 1, str(region))
    return 'one leak failure, one warning result at 0x90000'


def t_corrupt(env):
    rc, root = env.junit(['corrupt-refcount-zero.qcow2'])
    expect(rc == 2, 'exit %d' % rc)
    (s,) = suites(root)
    types = sorted(f.get('type') for f in s.findall('testcase/failure'))
    expect('refcount.too-low' in types, 'failures %s' % types)
    expect(int(s.get('tests')) >= 8, 'tests=%s' % s.get('tests'))
    rc, log = env.sarif_log(['corrupt-refcount-zero.qcow2'])
    res = sarif_run(log)['results']
    expect(rc == 2 and all(r['level'] == 'error' for r in res) and
           'refcount.too-low' in [r['ruleId'] for r in res], str(res)[:300])
    return '%d failures, %d error results' % (len(types), len(res))


def t_incomplete(env):
    images = ['missing.qcow2', 'disk.raw', WEIRD]
    rc, root = env.junit(images)
    expect(rc == 1, 'exit %d' % rc)
    s0, s1, s2 = suites(root)
    expect(s0.find('testcase/error') is not None and s0.get('errors') == '1', 'no <error>')
    expect(s1.find('testcase/skipped') is not None and s1.get('skipped') == '1', 'no <skipped>')
    expect(s2.get('name').startswith('we&<ir>d"\''), 'weird name %r' % s2.get('name'))
    rc, log = env.sarif_log(images)
    run = sarif_run(log)
    inv = run['invocations'][0]
    expect(inv['executionSuccessful'] is False and len(inv['toolExecutionNotifications']) == 2,
           str(inv)[:300])
    (r,) = run['results']
    uri = r['locations'][0]['physicalLocation']['artifactLocation']['uri']
    expect(uri == 'we%26%3Cir%3Ed%22%27%01%FF.qcow2', 'uri %r' % uri)
    return 'missing: <error>, raw: <skipped>, hostile name escaped'


def strip_times(xml):
    for s in xml.iter('testsuite'):
        s.set('time', '0')
        s.set('timestamp', '')  # two runs can straddle a second
    return ET.tostring(xml)


def t_batch(env):
    images = ['clean-c64k.qcow2', 'leak-one.qcow2', 'corrupt-refcount-zero.qcow2', 'v3.qcow2',
              'leak-one.qcow2', 'overlay.qcow2']
    rc1, lines = env.json_lines(images, ['-j', '2'])
    expect(rc1 == 2, 'exit %d (the worst is 2)' % rc1)
    expect([l['filename'] for l in lines] == images, 'order %s' % [l['filename'] for l in lines])
    expect([l['exit-code'] for l in lines] == [0, 3, 2, 0, 3, 0], 'codes')
    rc, lines1 = env.json_lines(images, ['-j', '1'])
    expect(lines1 == lines, '-j 1 and -j 2 differ (json)')
    rc, x1 = env.junit(images, ['-j', '1'])
    rc, x2 = env.junit(images, ['-j', '2'])
    expect([s.get('name') for s in suites(x2)] == images, 'junit order')
    expect(strip_times(x1) == strip_times(x2), '-j 1 and -j 2 differ (junit)')
    rc, l1 = env.sarif_log(images, ['-j', '1'])
    rc, l2 = env.sarif_log(images, ['-j', '2'])
    expect(l1 == l2, '-j 1 and -j 2 differ (sarif)')
    uris = [r['locations'][0]['physicalLocation']['artifactLocation']['uri']
            for r in sarif_run(l2)['results']]
    expect(uris[0] == 'leak-one.qcow2', 'first result uri %s' % uris)
    for args in (['--output', 'human', '-j', '2'], ['--output', 'junit', '-j', '2']):
        rc, out, err = env.run(args, images)
        expect(err == '', 'stderr not empty: %r' % err[:200])
    rc, lines = env.json_lines(images + ['missing.qcow2'], ['-j', '0'])
    expect(rc == 1 and len(lines) == 7, 'with a missing image: exit %d' % rc)
    return '%d images: JSON Lines in order, exit 2, -j 1 == -j 2' % len(images)


def t_tty(env):
    """In a pseudo-terminal, machine-readable output gets no progress line."""
    if not shutil.which('script'):
        return 'skipped: no script(1)'
    cmd = '%s check --no-guest --output json -j 2 %s' % (env.imgcheck, ' '.join(
        ['v3.qcow2', 'big.qcow2', 'leak-one.qcow2'] * 20))
    p = subprocess.run(['script', '-qec', cmd, '/dev/null'], cwd=env.root, capture_output=True,
                       timeout=TIMEOUT)
    expect(b'\x1b[K' not in p.stdout and b'images,' not in p.stdout, 'progress in json output')
    return 'no progress line with --output json on a terminal'


# (rule, image that violates it, image that satisfies it)
RULES = [
    ('allow_backing_file = false', 'overlay.qcow2', 'v3.qcow2'),
    ('allow_internal_snapshots = false', 'snap.qcow2', 'v3.qcow2'),
    ('allow_bitmaps = false', 'bitmap.qcow2', 'v3.qcow2'),
    ('allow_encryption = false', 'luks.qcow2', 'v3.qcow2'),
    ('require_compat = "1.1"', 'v2.qcow2', 'v3.qcow2'),
    ('require_compat = "0.10"', 'v3.qcow2', 'v2.qcow2'),
    ('max_virtual_size = "200G"', 'big.qcow2', 'v3.qcow2'),
    ('max_virtual_size = 67108864', 'big.qcow2', 'v3.qcow2'),
    ('cluster_sizes = [65536, "1M"]', 'c2m.qcow2', 'v3.qcow2'),
    ('cluster_sizes = ["2M"]', 'v3.qcow2', 'c2m.qcow2'),
    ('max_chain_depth = 2', 'overlay2.qcow2', 'overlay.qcow2'),
]


def violations(line):
    return [f['message'] for f in line['findings'] if f['slug'] == 'policy.violation']


def t_rule(env, rule, bad, good):
    name = env.policy(rule + '\n')
    key = rule.split(' ')[0]
    rc, (lb, lg) = env.json_lines([bad, good], ['--policy', name])
    vb, vg = violations(lb), violations(lg)
    expect(len(vb) == 1 and vb[0].startswith('policy rule %s: ' % key), 'violated: %s' % vb)
    expect(lb['exit-code'] == 2 and vg == [] and lg['exit-code'] == 0,
           'exit %d/%d, %s' % (lb['exit-code'], lg['exit-code'], vg))
    return '%s | %s' % (bad, vb[0])


def t_policy_reports(env):
    name = env.policy('allow_backing_file = false\nmax_chain_depth = 1\n')
    rc, root = env.junit(['overlay.qcow2', 'v3.qcow2'], ['--policy', name])
    s0, s1 = suites(root)
    fails = [c.get('name') for c in s0.findall('testcase') if c.find('failure') is not None]
    expect(fails == ['policy.violation'] * 2, 'policy failures %s' % fails)
    expect(('policy', 'policy') in case_names(s1), 'no passing policy testcase')
    rc, log = env.sarif_log(['overlay.qcow2'], ['--policy', name])
    res = sarif_run(log)['results']
    expect(rc == 2 and [r['ruleId'] for r in res] == ['policy.violation'] * 2, str(res)[:300])
    return 'policy family in junit, policy.violation results in sarif'


def t_policy_error(env, text, line, words):
    name = env.policy(text)
    rc, out, err = env.run(['--policy', name], ['clean-c64k.qcow2', 'leak-one.qcow2'])
    lines = err.strip().splitlines()
    expect(rc == 1 and out == b'', 'exit %d, stdout %r' % (rc, out[:100]))
    expect(len(lines) == 1 and lines[0].startswith('imgcheck: %s:%d:' % (name, line)),
           'stderr %r' % err)
    expect(all(w in lines[0] for w in words), 'message %r lacks %s' % (lines[0], words))
    return lines[0]


def t_regrade(env, policy, images, want_exit, check=None):
    name = env.policy(policy)
    rc, lines = env.json_lines(images, ['--policy', name])
    expect(rc == want_exit, 'exit %d, want %d' % (rc, want_exit))
    for l in lines:
        expect(l['exit-code'] == (2 if l['corruptions'] else 3 if l['leaks'] else 0),
               'counters and exit-code disagree: %s' % {k: l[k] for k in ('corruptions', 'leaks',
                                                                         'exit-code')})
    if check:
        check(lines)
    return 'exit %d' % rc


def t_guest(env, guests):
    """centos7-vda1: fstab mounts /boot by the raw name /dev/vda1 (fstab.raw-device). Two runs
    only (each launches an appliance): JUnit with the finding re-graded to a warning, SARIF
    with [guest] fstab_require_stable_names making it an error again."""
    image = [os.path.join(guests, GUEST_FIXTURES[0] + '.qcow2')]
    name = env.policy('[severity]\n"fstab.raw-device" = "warning"\n')
    rc1, root = env.junit(image, ['--policy', name], guest=True)
    (s,) = suites(root)
    fams = [f for f, _ in case_names(s)]
    expect('fstab' in fams and 'grub' in fams, 'guest families %s' % fams)
    expect(s.find('testcase/failure') is None and rc1 == 0, 'exit %d with the warning' % rc1)
    out = s.find('system-out').text or ''
    expect('[warning] fstab.raw-device' in out, 'no warning; system-out: %s' % out[:600])
    name = env.policy('[guest]\nfstab_require_stable_names = true\n')
    rc2, log = env.sarif_log(image, ['--policy', name], guest=True)
    raw = [r for r in sarif_run(log)['results'] if r['ruleId'] == 'fstab.raw-device']
    expect(rc2 == 2 and raw and raw[0]['level'] == 'error', 'exit %d, %s' % (rc2, raw))
    logical = raw[0]['locations'][0].get('logicalLocations', [{}])[0].get('name', '')
    expect(logical.startswith('/etc/fstab:'), 'logical location %r' % logical)
    return 'valid; fstab.raw-device at %s; warning: exit %d, guest rule: exit %d' % (
        logical, rc1, rc2)


def cases(env, guests):
    yield 'junit-sarif-clean', lambda: t_clean(env)
    yield 'junit-sarif-leaky', lambda: t_leaky(env)
    yield 'junit-sarif-corrupt', lambda: t_corrupt(env)
    yield 'junit-sarif-incomplete', lambda: t_incomplete(env)
    yield 'batch', lambda: t_batch(env)
    yield 'tty-machine-output', lambda: t_tty(env)
    for rule, bad, good in RULES:
        yield 'policy ' + rule, (lambda r=rule, b=bad, g=good: t_rule(env, r, b, g))
    yield 'policy-reports', lambda: t_policy_reports(env)
    yield 'policy-invalid-toml', lambda: t_policy_error(
        env, 'allow_bitmaps = true\n\nmax_chain_depth = = 2\n', 3, ['invalid TOML'])
    yield 'policy-unknown-key', lambda: t_policy_error(
        env, '# house rules\nallow_snapshots = false\n', 2, ['unknown key', 'allow_snapshots'])
    yield 'policy-unknown-slug', lambda: t_policy_error(
        env, '[severity]\n"refcount.leek" = "error"\n', 2, ['refcount.leak'])
    yield 'policy-bad-value', lambda: t_policy_error(
        env, 'max_virtual_size = "200 GB"\n', 1, ['max_virtual_size'])
    yield 'policy-leak-to-error', lambda: t_regrade(
        env, '[severity]\n"refcount.leak" = "error"\n', ['leak-one.qcow2'], 2)
    yield 'policy-leak-to-warning', lambda: t_regrade(
        env, '[severity]\n"refcount.leak" = "warning"\n', ['leak-one.qcow2'], 0)
    yield 'policy-ignore-leak', lambda: t_regrade(
        env, 'ignore = ["refcount.leak"]\n', ['leak-one.qcow2', 'clean-c64k.qcow2'], 0,
        lambda ls: expect(ls[0]['findings'] == [] and ls[0]['leaks'] == 0, 'leak listed'))
    yield 'policy-ignore-corruption', lambda: t_regrade(
        env, 'ignore = ["refcount.too-low", "l2.copied-mismatch"]\n',
        ['corrupt-refcount-zero.qcow2'], 0)
    yield 'policy-violation-to-warning', lambda: t_regrade(
        env, 'allow_backing_file = false\n[severity]\n"policy.violation" = "warning"\n',
        ['overlay.qcow2'], 0)
    if guests:
        yield 'guest-broken', lambda: t_guest(env, guests)


def build_guests(root):
    out = os.path.join(root, 'guests')
    p = subprocess.run([sys.executable, os.path.join(REPO, 'fixtures', 'build_guests.py'), out,
                        '--only'] + GUEST_FIXTURES, capture_output=True, text=True,
                       timeout=TIMEOUT * 8)
    if p.returncode != 0:
        raise Failed('build_guests.py failed: ' + (p.stdout + p.stderr).strip()[-400:])
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--schemas', default=os.path.join(REPO, 'tests', 'schemas'))
    ap.add_argument('--guest', choices=['auto', 'yes', 'no'], default='auto')
    ap.add_argument('--keep', action='store_true', help='keep the temporary directory')
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    root = tempfile.mkdtemp(prefix='imgcheck-reports-')
    env = Env(imgcheck, os.path.abspath(a.schemas), root)
    passed = failed = 0

    def report(name, fn):
        nonlocal passed, failed
        try:
            print('PASS %s: %s' % (name, fn()))
            passed += 1
        except (Failed, subprocess.SubprocessError, ValueError, KeyError, IndexError) as e:
            print('FAIL %s: %s' % (name, e))
            failed += 1
        sys.stdout.flush()

    try:
        build_images(env)
        guests = None
        if a.guest == 'yes' or (a.guest == 'auto' and shutil.which('guestfish')):
            try:
                guests = build_guests(root)
            except (Failed, subprocess.SubprocessError) as e:
                report('guest-fixtures', lambda: (_ for _ in ()).throw(Failed(str(e))))
        for name, fn in cases(env, guests):
            report(name, fn)
    finally:
        if a.keep:
            print('kept ' + root)
        else:
            shutil.rmtree(root, ignore_errors=True)
    print('%d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
