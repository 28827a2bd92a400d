#!/usr/bin/python3
"""Repair test: `imgcheck repair` / `imgcheck undo` versus `qemu-img check -r all`.

    run_repair.py --imgcheck PATH [--fixtures DIR] [--no-build] [--only NAME...] [--keep]

Builds the fixtures of fixtures/build_fixtures.py (temporary directory unless
--fixtures) and, per case, in a scratch directory:

  a. copies A (qemu) and B (ours); `qemu-img check -r all A`, and
     `imgcheck repair --journal J --output json B`;
  b. never worse: our errors (corruptions + check-errors, by `imgcheck check`) do not
     grow, the corrupt bit is not newly set, snapshots and bitmaps (qemu-img info)
     are not fewer;
  c. where `qemu-img check A` exits 0 after qemu's repair, our repair and our check
     exit 0 and `qemu-img check B` exits 0;
  d. guest data kept: `qemu-img compare` ORIGINAL vs B, and every snapshot converted
     to raw and cmp'd (skipped, with a note, where qemu cannot read the original);
  e. `imgcheck undo --dry-run` changes nothing, `imgcheck undo J B` restores the
     original byte for byte; `repair --dry-run` writes nothing and makes no journal;
  f. undo refuses (exit 1, nothing written) a changed journaled byte, a changed file
     length, and a different image;
  g. data-loss cases (expect['repair']['data_loss'], EXISTING below, or a
     not-repaired reason naming --allow-data-loss): a fresh copy repaired with
     --allow-data-loss has no errors left, a non-empty `data-loss` list, and undo
     (IMAGE taken from the journal) restores the original.
  h. latent damage (expect['repair']['latent_snapshot'] = NAME, a snapshot whose L1
     offset is + 0x200): after our repair, a guest write over the whole disk
     (qemu-io) must not change that snapshot's data once its offset is realigned,
     i.e. the repair must not drop the references it cannot see (qemu's does);
     keep_l2 = [guest offsets]: a repair without --allow-data-loss leaves their L2
     entries and data-cluster refcounts alone;
Bad inputs qemu cannot open and expect['repair']['refuse'] cases must be refused;
every refusal: exit 1, one stderr line, image untouched, no journal.  Side files
(<name>.data) must stay unchanged.
Prints `PASS|FAIL name: qemu ... | ours ...` per case and `N passed, M failed` last.
"""
import argparse
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True   # keep fixtures/ free of __pycache__
sys.path.insert(0, os.path.join(HERE, '..', '..', 'fixtures'))
import build_fixtures as bf  # noqa: E402

T_OURS = 60        # seconds, one imgcheck run
T_QEMU = 120       # seconds, one qemu-img run
REPAIR_KEYS = ('filename', 'mode', 'dry-run', 'journal', 'backup', 'actions', 'data-loss',
               'not-repaired', 'before', 'after', 'exit-code')

# repair metadata for cases that predate expect['repair']
EXISTING = {
    'corrupt-l2-past-eof': {'data_loss': True},
    'corrupt-l2-unaligned': {'data_loss': True},
    'corrupt-snapshot-l1-unaligned': {'data_loss': True, 'latent_snapshot': 'snap1'},
    'header-unknown-incompat': {'refuse': 'unsupported incompatible feature'},
}
SKIP = {}   # name -> reason


# ---------------------------------------------------------------- helpers

def run(cmd, timeout, cwd=None):
    """(exit code, stdout, stderr); exit code None on timeout."""
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, errors='replace',
                           timeout=timeout, cwd=cwd)
    except subprocess.TimeoutExpired:
        return None, '', 'TIMEOUT after %d s' % timeout
    except OSError as e:          # e.g. the binary is being relinked
        return 127, '', 'cannot run %s: %s' % (cmd[0], e)
    return p.returncode, p.stdout, p.stderr


def parse_json(text):
    try:
        v = json.loads(text)
    except ValueError:
        return None
    return v if isinstance(v, dict) else None


def sha(path):
    if not os.path.exists(path):
        return None
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def files_equal(a, b):
    return sha(a) == sha(b)


def compact(obj, limit=600):
    s = json.dumps(obj, sort_keys=True, separators=(',', ':'))
    return s if len(s) <= limit else s[:limit] + '...'


def one_line(text, limit=300):
    t = ' / '.join(x for x in text.strip().splitlines() if x.strip())
    return t if len(t) <= limit else t[:limit] + '...'


def incompat(path):
    """Incompatible feature bits (v3), or 0."""
    with open(path, 'rb') as f:
        h = f.read(80)
    if len(h) < 80 or h[:4] != b'QFI\xfb' or int.from_bytes(h[4:8], 'big') < 3:
        return 0
    return int.from_bytes(h[72:80], 'big')


def copy_case(src_dir, name, dst):
    """Copy <name>.qcow2 to dst (side files are referenced by absolute path)."""
    shutil.copyfile(bf.image_path(src_dir, name), dst)
    return dst


class Ctx:
    def __init__(self, name, imgcheck, work):
        self.name, self.imgcheck, self.work = name, imgcheck, work
        self.problems, self.notes, self.details = [], [], []

    def fail(self, msg):
        self.problems.append(msg)

    def note(self, msg):
        if msg not in self.notes:
            self.notes.append(msg)

    def p(self, fname):
        return os.path.join(self.work, fname)

    def ours(self, *args, timeout=T_OURS):
        rc, out, err = run([self.imgcheck] + list(args), timeout)
        if rc is None:
            self.fail('imgcheck %s timed out' % args[0])
        elif rc < 0 or rc >= 128:
            self.fail('imgcheck %s crashed (exit %d): %s' % (args[0], rc, one_line(err)))
        return rc, out, err


def qemu_info(path):
    """(snapshot names or None, bitmap count or None, corrupt flag or None)."""
    rc, out, _ = run(['qemu-img', 'info', '--output=json', path], T_QEMU)
    js = parse_json(out) if rc == 0 else None
    if js is None:
        return None, None, None
    snaps = [s.get('name') for s in js.get('snapshots', [])]
    data = js.get('format-specific', {}).get('data', {})
    return snaps, len(data.get('bitmaps', [])), data.get('corrupt')


def our_info(ctx, path):
    rc, out, _ = run([ctx.imgcheck, 'info', '--untrusted', '--output', 'json', path], T_OURS)
    js = parse_json(out)
    if js is None:
        return None, None
    return ([s.get('name') for s in js.get('snapshots', [])] if 'snapshots' in js else None,
            len(js['bitmaps']) if isinstance(js.get('bitmaps'), list) else None)


def our_check(ctx, path):
    """(exit code, json or None)."""
    rc, out, err = ctx.ours('check', '--no-guest', '--output', 'json', path)
    return rc, parse_json(out)


def errors_of(js):
    if not js:
        return None
    return int(js.get('corruptions', 0)) + int(js.get('check-errors', 0))


def qemu_check(path, repair=False):
    cmd = ['qemu-img', 'check', '--output=json'] + (['-r', 'all'] if repair else []) + [path]
    rc, out, err = run(cmd, T_QEMU)
    return rc, parse_json(out), err


def summary_repair(js):
    if not js:
        return 'no JSON'
    acts = [a.get('kind') for a in js.get('actions', []) if isinstance(a, dict)]
    kinds = {}
    for k in acts:
        kinds[k] = kinds.get(k, 0) + 1
    return 'actions %s%s%s' % (
        ','.join('%s%s' % (k, 'x%d' % n if n > 1 else '') for k, n in kinds.items()) or '-',
        ' data-loss %d' % len(js.get('data-loss') or []) if js.get('data-loss') else '',
        ' not-repaired %s' % ','.join(str(x.get('slug')) for x in js.get('not-repaired') or []
                                      if isinstance(x, dict)) if js.get('not-repaired') else '')


# ---------------------------------------------------------------- steps

def check_refusal(ctx, label, rc, err, img, orig_sha, journal):
    """A refused repair: exit 1, one stderr line, image untouched, no journal."""
    if sha(img) != orig_sha:
        ctx.fail('%s: exit %s but the image was modified' % (label, rc))
    if journal and os.path.exists(journal):
        ctx.fail('%s: exit %s but a journal was left behind' % (label, rc))
    if os.path.exists(img + '.imgcheck-undo'):
        ctx.fail('%s: a default-path journal was left behind' % label)
    lines = [x for x in err.splitlines() if x.strip()]
    if len(lines) != 1:
        ctx.fail('%s: refusal should print one stderr line, got %d: %s'
                 % (label, len(lines), one_line(err)))


def step_dry_run(ctx, orig, orig_sha):
    d = copy_case_from(ctx, orig, 'dry.qcow2')
    jd = ctx.p('dry.journal')
    rc, out, err = ctx.ours('repair', '--dry-run', '--journal', jd, '--output', 'json', d)
    if rc is None:
        return
    if sha(d) != orig_sha:
        ctx.fail('repair --dry-run modified the image')
    if os.path.exists(jd) or os.path.exists(d + '.imgcheck-undo'):
        ctx.fail('repair --dry-run created a journal')
    js = parse_json(out)
    if rc != 1 and (js is None or js.get('dry-run') is not True):
        ctx.fail('repair --dry-run: JSON lacks "dry-run": true: %s' % one_line(out or err))


def copy_case_from(ctx, orig, fname):
    dst = ctx.p(fname)
    shutil.copyfile(orig, dst)
    return dst


def step_compare(ctx, orig, img, snaps):
    """Guest data of the active layer and every snapshot is unchanged."""
    rc, out, err = run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', orig, img], T_QEMU)
    if rc != 0:
        rrc, _, rerr = run(['qemu-img', 'compare', '-f', 'qcow2', '-F', 'qcow2', orig, orig],
                           T_QEMU)
        if rrc != 0:
            ctx.note('compare skipped: qemu-img cannot read the original (%s)'
                     % one_line(rerr, 120))
        else:
            ctx.fail('guest data changed: qemu-img compare exit %s: %s'
                     % (rc, one_line(out + err)))
    for s in snaps or []:
        ra, rb = ctx.p('snap-orig.raw'), ctx.p('snap-new.raw')
        c1 = run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-l',
                  'snapshot.name=' + s, orig, ra], T_QEMU)
        if c1[0] != 0:
            ctx.note('snapshot %s compare skipped: qemu-img cannot read it in the original' % s)
            continue
        c2 = run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-l',
                  'snapshot.name=' + s, img, rb], T_QEMU)
        if c2[0] != 0:
            ctx.fail('snapshot %s unreadable after repair: %s' % (s, one_line(c2[2])))
        elif not files_equal(ra, rb):
            ctx.fail('snapshot %s guest data changed' % s)
        for f in (ra, rb):
            if os.path.exists(f):
                os.unlink(f)


def step_undo_refusals(ctx, img, journal, orig):
    """Undo must refuse a changed journaled byte, a changed length, another image."""
    with open(img, 'rb') as f:
        new = f.read()
    with open(orig, 'rb') as f:
        old = f.read()

    def restore():
        with open(img, 'wb') as f:
            f.write(new)

    def expect_refusal(label, target):
        before = sha(target)
        rc, out, err = ctx.ours('undo', journal, target)
        if rc is None:
            return
        if rc != 1:
            ctx.fail('undo did not refuse %s (exit %s): %s' % (label, rc, one_line(out + err)))
        if sha(target) != before:
            ctx.fail('undo wrote to the image although it %s' % label)

    n = min(len(old), len(new))
    pos = next((i for i in range(n) if old[i] != new[i]), None)
    if pos is not None:
        v = next(x for x in (0xa5, 0x5a, 0x00, 0xff) if x not in (old[pos], new[pos]))
        with open(img, 'r+b') as f:
            f.seek(pos)
            f.write(bytes([v]))
        expect_refusal('has a changed journaled byte at %#x' % pos, img)
        restore()
    # a length that is neither the old nor the new one
    junk = max(len(old), len(new)) + 4096
    with open(img, 'ab') as f:
        f.write(b'\xa5' * (junk - len(new)))
    expect_refusal('has a changed length (%d)' % junk, img)
    restore()
    # a different image of the same length
    other = ctx.p('other.qcow2')
    with open(other, 'wb') as f:
        f.write(bytes((i * 7 + 3) & 0xff for i in range(256)) * (len(new) // 256 + 1))
        f.truncate(len(new))
    expect_refusal('is a different file', other)
    os.unlink(other)
    if sha(img) is None or open(img, 'rb').read() != new:
        restore()


def step_undo(ctx, img, journal, orig_sha, label, explicit_image=True):
    b = sha(img)
    rc, out, err = ctx.ours('undo', '--dry-run', journal, img)
    if rc is not None and rc != 0:
        ctx.fail('%s: undo --dry-run exit %s: %s' % (label, rc, one_line(out + err)))
    if sha(img) != b:
        ctx.fail('%s: undo --dry-run modified the image' % label)
    args = ['undo', journal] + ([img] if explicit_image else [])
    rc, out, err = ctx.ours(*args)
    if rc is None:
        return
    if rc != 0:
        ctx.fail('%s: undo exit %s: %s' % (label, rc, one_line(out + err)))
    if sha(img) != orig_sha:
        ctx.fail('%s: after undo the image differs from the original (sha256)' % label)


def realign_snapshot(path, name):
    """Subtract the fixture's 0x200 from snapshot NAME's L1 offset; False if absent."""
    im = bf.Img(path)
    for i in range(im.nb_snapshots):
        pos = im.snapshot_pos(i)
        id_len, name_len = struct.unpack('>HH', im.read(pos + 12, 4))
        extra = im.u32(pos + 36)
        if im.read(pos + 40 + extra + id_len, name_len).decode(errors='replace') == name:
            off = im.u64(pos)
            if off % im.cs == 0x200:
                im.put64(pos, off - 0x200)
            return True
    return False


def step_latent_snapshot(ctx, orig, img, name):
    ref, w = ctx.p('latent-ref.qcow2'), ctx.p('latent-w.qcow2')
    r0, r1 = ctx.p('latent-ref.raw'), ctx.p('latent-w.raw')
    shutil.copyfile(orig, ref)
    shutil.copyfile(img, w)
    if not realign_snapshot(ref, name):
        ctx.note('latent check skipped: no snapshot %s in the original' % name)
        return
    rc, _, err = run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-l',
                      'snapshot.name=' + name, ref, r0], T_QEMU)
    if rc != 0:
        ctx.note('latent check skipped: realigned original unreadable (%s)' % one_line(err, 100))
        return
    size = bf.Img(w).size
    rc, out, err = run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xee 0 %d' % size, w], T_QEMU)
    if rc != 0 or 'error' in (out + err).lower() or 'corrupt' in (out + err).lower():
        o = ctx.p('latent-o.qcow2')
        shutil.copyfile(orig, o)
        orc, oout, oerr = run(['qemu-io', '-f', 'qcow2', '-c', 'write -P 0xee 0 %d' % size, o],
                              T_QEMU)
        os.unlink(o)
        if orc == 0 and 'error' not in (oout + oerr).lower():
            ctx.fail('latent: a guest write fails after our repair (works on the original): %s'
                     % one_line(out + err, 150))
        else:
            ctx.note('latent check: qemu-io write fails, on the original too')
        return
    if not realign_snapshot(w, name):
        ctx.fail('latent: snapshot %s is gone after a repair without --allow-data-loss' % name)
        return
    rc, _, err = run(['qemu-img', 'convert', '-f', 'qcow2', '-O', 'raw', '-l',
                      'snapshot.name=' + name, w, r1], T_QEMU)
    if rc != 0:
        ctx.fail('latent: snapshot %s unreadable after a guest write (%s)'
                 % (name, one_line(err, 150)))
    elif not files_equal(r0, r1):
        ctx.fail('latent: a guest write after our repair overwrote snapshot %s\'s data '
                 '(its shared clusters lost their references)' % name)
    for f in (ref, w, r0, r1):
        if os.path.exists(f):
            os.unlink(f)


def l2_state(path, goff):
    im = bf.Img(path)
    e = im.l2(goff)
    return e, im.refcount((e & bf.L2E_OFFSET_MASK) // im.cs)


def step_keep_l2(ctx, orig, img, offsets):
    for g in offsets:
        try:
            a, b = l2_state(orig, g), l2_state(img, g)
        except (AssertionError, struct.error, ValueError) as e:
            ctx.fail('keep_l2 %#x: cannot read the L2 entry after repair (%s)' % (g, e))
            continue
        if a != b:
            ctx.fail('repair touched the valid neighbour at guest %#x: L2 entry %#x refcount %d '
                     '-> L2 entry %#x refcount %d' % (g, a[0], a[1], b[0], b[1]))


def data_loss_wanted(meta, js):
    if meta.get('data_loss'):
        return True
    for x in (js or {}).get('not-repaired') or []:
        r = json.dumps(x).lower()
        if 'allow-data-loss' in r or 'data loss' in r or 'data-loss' in r:
            return True
    return False


def check_json_keys(ctx, js, label, wrote=True):
    """Contract keys; 'after' is only absent on --dry-run (noted, not failed, when the
    repair wrote nothing)."""
    missing = [k for k in REPAIR_KEYS if k not in js]
    if 'after' in missing and not wrote:
        missing.remove('after')
        ctx.note('JSON lacks "after" (nothing written)')
    if missing:
        ctx.fail('%s JSON lacks %s' % (label, ','.join(missing)))


def step_data_loss(ctx, orig, orig_sha, side):
    L = copy_case_from(ctx, orig, 'loss.qcow2')
    jl = ctx.p('loss.journal')
    rc, out, err = ctx.ours('repair', '--allow-data-loss', '--journal', jl, '--output', 'json', L)
    if rc is None:
        return
    js = parse_json(out)
    ctx.details.append('ours --allow-data-loss: exit %s %s' % (
        rc, compact({k: js.get(k) for k in ('actions', 'data-loss', 'not-repaired', 'after')})
        if js else one_line(out + err)))
    if js is None:
        ctx.fail('--allow-data-loss: no JSON on stdout')
        return
    check_json_keys(ctx, js, '--allow-data-loss', sha(L) != orig_sha)
    crc, cjs = our_check(ctx, L)
    if errors_of(cjs) != 0:
        ctx.fail('--allow-data-loss: errors remain (check exit %s, %s)' % (
            crc, compact({k: cjs.get(k) for k in ('corruptions', 'check-errors', 'leaks')})
            if cjs else 'no JSON'))
    if not js.get('data-loss'):
        ctx.fail('--allow-data-loss: JSON "data-loss" is empty')
    if crc == 0:
        qrc, _, qerr = qemu_check(L)
        if qrc != 0:
            ctx.fail('--allow-data-loss: we say clean, qemu-img check exit %s: %s'
                     % (qrc, one_line(qerr)))
    if incompat(L) & 2 and not incompat(orig) & 2:
        ctx.fail('--allow-data-loss: repair set the corrupt bit')
    for f, h in side.items():
        if sha(f) != h:
            ctx.fail('--allow-data-loss: side file %s changed' % os.path.basename(f))
    if os.path.exists(jl):
        step_undo(ctx, L, jl, orig_sha, '--allow-data-loss', explicit_image=False)
    elif sha(L) != orig_sha:
        ctx.fail('--allow-data-loss changed the image but wrote no journal')


# ---------------------------------------------------------------- one case

def check_case(c, fxdir, imgcheck, scratch):
    name = c['name']
    meta = dict(EXISTING.get(name, {}))
    meta.update(c['expect'].get('repair', {}))
    work = tempfile.mkdtemp(prefix=name + '.', dir=scratch)
    ctx = Ctx(name, imgcheck, work)
    orig = copy_case(fxdir, name, ctx.p('orig.qcow2'))
    orig_sha = sha(orig)
    side = {f: sha(f) for f in bf.case_files(fxdir, name) if not f.endswith('.qcow2')}

    # qemu on the original and on its copy A
    q0_rc, q0_js, q0_err = qemu_check(orig)
    qemu_opens = q0_rc not in (None, 63) and 'Could not open' not in q0_err
    A = copy_case_from(ctx, orig, 'A.qcow2')
    qr_rc, qr_js, qr_err = qemu_check(A, repair=True)
    qa_rc, qa_js, qa_err = qemu_check(A)
    a_snaps, a_bm, _ = qemu_info(A)
    o_snaps, o_bm, _ = qemu_info(orig)
    qemu_did = 'qemu: check %s, -r all %s -> check %s%s%s%s' % (
        q0_rc, qr_rc, qa_rc,
        ' CORRUPT-MARKED' if (incompat(A) & 2) and not (incompat(orig) & 2) else '',
        '' if a_snaps is None or o_snaps is None or len(a_snaps) == len(o_snaps)
        else ' snapshots %d->%d' % (len(o_snaps), len(a_snaps)),
        '' if a_bm is None or o_bm is None or a_bm == o_bm
        else ' bitmaps %d->%d' % (o_bm, a_bm))
    if qr_js is None and q0_js is not None:
        qemu_did += ' (%s)' % one_line(qr_err, 100)

    want_snaps = meta.get('snapshots')
    if want_snaps is None and o_snaps is not None:
        want_snaps = len(o_snaps)
    if o_snaps is None:
        ctx.note('qemu-img info cannot open the original')
    want_bm = o_bm
    if want_bm is None:
        want_bm = our_info(ctx, orig)[1]

    # our check before
    b_rc, b_js = our_check(ctx, orig)
    if sha(orig) != orig_sha:
        ctx.fail('imgcheck check modified the image')
    err_before = errors_of(b_js)

    # dry run
    step_dry_run(ctx, orig, orig_sha)

    # the repair
    B = copy_case_from(ctx, orig, 'B.qcow2')
    J = ctx.p('B.journal')
    rc, out, err = ctx.ours('repair', '--journal', J, '--output', 'json', B)
    js = parse_json(out)
    changed = sha(B) != orig_sha
    we_did = 'ours: check %s, repair %s%s' % (b_rc, rc, ' ' + summary_repair(js) if js else '')
    ctx.details.append('ours: exit %s %s %s' % (rc, compact(js) if js else repr(out[:300]),
                                               one_line(err) if err.strip() else ''))
    if qemu_opens:
        ctx.details.append('qemu -r all: exit %s %s; after: exit %s %s' % (
            qr_rc, compact(qr_js) if qr_js else one_line(qr_err),
            qa_rc, compact(qa_js) if qa_js else one_line(qa_err)))

    if rc is None or rc < 0 or rc >= 128:
        return ctx, qemu_did, we_did
    if meta.get('refuse') or (not qemu_opens and name.startswith('bad-')):
        # bad input qemu cannot open, or a contract refusal: we must refuse
        if rc != 1:
            ctx.fail('repair exit %s, want 1 (refusal: %s)'
                     % (rc, meta.get('refuse') or 'qemu cannot open it'))
        check_refusal(ctx, 'repair', rc, err, B, orig_sha, J)
        return ctx, qemu_did, we_did
    refused = rc == 1 and not changed
    if refused:
        check_refusal(ctx, 'repair', rc, err, B, orig_sha, J)
    if js is None:
        if not refused:
            ctx.fail('repair printed no JSON object on stdout')
    else:
        check_json_keys(ctx, js, 'repair', changed)
        if js.get('exit-code') != rc:
            ctx.fail('JSON exit-code %s, process exit %s' % (js.get('exit-code'), rc))
    if not changed and os.path.exists(J):
        if rc == 0:
            ctx.fail('nothing changed (exit 0), yet a journal was written')
        else:
            ctx.note('image unchanged but a journal was written')
    if changed and not os.path.exists(J):
        ctx.fail('repair changed the image but %s does not exist' % os.path.basename(J))
    if js and js.get('journal') not in (None, J) and os.path.exists(J):
        ctx.fail('JSON journal %r, expected %r' % (js.get('journal'), J))

    # b. never worse
    a_rc, a_js = our_check(ctx, B)
    err_after = errors_of(a_js)
    if err_before is not None and err_after is not None and err_after > err_before:
        ctx.fail('errors grew: %d -> %d' % (err_before, err_after))
    if a_js is not None and rc in (0, 2, 3) and a_rc != rc:
        ctx.fail('repair exit %s but a fresh check exits %s' % (rc, a_rc))
    if js and a_js and isinstance(js.get('after'), dict):
        for k in ('corruptions', 'leaks'):
            if js['after'].get(k) != a_js.get(k):
                ctx.fail('JSON after.%s %s, fresh check %s' % (k, js['after'].get(k), a_js.get(k)))
    if incompat(B) & 2 and not incompat(orig) & 2:
        ctx.fail('repair set the corrupt bit')
    b_snaps, b_bm, _ = qemu_info(B)
    if b_snaps is None and changed and (o_snaps is not None or meta.get('snapshots')):
        ctx.fail('qemu-img info cannot open the repaired image')
    if want_snaps is not None and b_snaps is not None and len(b_snaps) < want_snaps:
        ctx.fail('snapshots %d -> %d' % (want_snaps, len(b_snaps)))
    if want_bm is not None and b_bm is not None and b_bm < want_bm:
        ctx.fail('bitmaps %d -> %d' % (want_bm, b_bm))
    for f, h in side.items():
        if sha(f) != h:
            ctx.fail('side file %s changed' % os.path.basename(f))

    # c. where qemu's repair ends clean, ours must too
    if qa_rc == 0:
        if rc != 0 or a_rc != 0:
            ctx.fail('qemu repaired it clean; our repair exit %s, our check exit %s%s'
                     % (rc, a_rc, (' ' + ','.join(sorted({f.get('slug') for f in
                                                          a_js.get('findings', [])})))
                        if a_js else ''))
        q_rc, _, q_err = qemu_check(B)
        if q_rc != 0:
            ctx.fail('qemu-img check of our repaired image: exit %s %s' % (q_rc, one_line(q_err)))
    elif rc == 0:
        q_rc, _, q_err = qemu_check(B)
        if q_rc not in (0,) and qemu_opens:
            ctx.fail('we exit 0, qemu-img check of our result exits %s %s'
                     % (q_rc, one_line(q_err)))

    # d. guest data
    if changed:
        src, src_snaps = orig, o_snaps
        if meta.get('reference'):
            src = ctx.p('reference.qcow2')
            shutil.copyfile(orig, src)
            meta['reference'](bf.Img(src))
            src_snaps = qemu_info(src)[0]
            ctx.note('data compared with the fixture\'s reference copy of the original')
        if src != orig or qemu_opens or o_snaps is not None:
            step_compare(ctx, src, B, src_snaps)
        else:
            ctx.note('compare skipped: qemu-img cannot open the original')

    # h. latent damage
    if meta.get('keep_l2') and changed:
        step_keep_l2(ctx, orig, B, meta['keep_l2'])
    if meta.get('latent_snapshot') and changed:
        step_latent_snapshot(ctx, orig, B, meta['latent_snapshot'])

    # f, e. undo
    if os.path.exists(J):
        if changed:
            step_undo_refusals(ctx, B, J, orig)
        step_undo(ctx, B, J, orig_sha, 'undo')

    # g. data loss
    if data_loss_wanted(meta, js):
        step_data_loss(ctx, orig, orig_sha, side)
    return ctx, qemu_did, we_did


# ---------------------------------------------------------------- driver

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--fixtures', help='build (or with --no-build, reuse) images here')
    ap.add_argument('--no-build', action='store_true')
    ap.add_argument('--only', nargs='+', metavar='NAME')
    ap.add_argument('--keep', action='store_true', help='keep the scratch directory')
    ap.add_argument('-v', '--verbose', action='store_true', help='details for passing cases too')
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    if not os.access(imgcheck, os.X_OK):
        sys.exit('not executable: ' + imgcheck)
    if a.no_build and not a.fixtures:
        sys.exit('--no-build needs --fixtures')
    rc, out, err = run([imgcheck, 'repair', '--help'], 10)
    if rc != 0:
        print('note: `imgcheck repair --help` exit %s: %s' % (rc, one_line(out + err, 120)))

    scratch = tempfile.mkdtemp(prefix='imgcheck-repair-')
    fxdir = os.path.abspath(a.fixtures) if a.fixtures else os.path.join(scratch, 'fixtures')
    cases = bf.select(a.only) if a.no_build else bf.build(fxdir, a.only)

    passed = failed = 0
    for c in cases:
        if c['name'] in SKIP:
            print('SKIP %s: %s' % (c['name'], SKIP[c['name']]))
            continue
        ctx, qemu_did, we_did = check_case(c, fxdir, imgcheck, scratch)
        ok = not ctx.problems
        print('%s %s: %s | %s%s' % ('PASS' if ok else 'FAIL', c['name'], qemu_did, we_did,
                                    ''.join(' [%s]' % n for n in ctx.notes)))
        for pr in ctx.problems:
            print('    - ' + pr)
        if not ok or a.verbose:
            for d in ctx.details:
                print('    ' + d)
        passed += ok
        failed += not ok
        if not a.keep:
            shutil.rmtree(ctx.work, ignore_errors=True)
    print('%d passed, %d failed' % (passed, failed))
    if a.keep:
        print('scratch kept in ' + scratch, file=sys.stderr)
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
