#!/usr/bin/python3
"""End-to-end against a real libvirtd (issue 10): a defined, never-started domain read with
`imgcheck check -d NAME -c qemu:///system`.

    run_libvirtd.py --imgcheck PATH

The daemon is started by this script, as root, inside a private mount namespace (unshare -m)
whose /run/libvirt, /var/lib/libvirt, /var/cache/libvirt, /var/log/libvirt and /etc/libvirt/qemu
are empty tmpfs mounts: the host's libvirt state and defined domains are neither seen nor
changed, and no systemd is needed (the daemon binary runs directly, in the foreground). The
domain XML comes from `virt-install --connect qemu:///system --print-xml` (the real QEMU driver:
machine types, controllers, PCI addresses), is defined with virsh, never started, and read by
imgcheck through libvirt's C API (read-only connection, inactive XML). Then the domain is
undefined and the daemon stopped by its pid.

Checks: the disks, targets, buses and guest names as the daemon reports them; a backing file
without format (vm.backing-format-missing, libvirt's own words); a directory the qemu user
(Debian's libvirt-qemu, from qemu.conf's defaults) cannot search (vm.storage-access-denied);
`imgcheck info -d`. Prints PASS/FAIL and `N passed, M failed`.
"""
import argparse
import json
import os
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

PRIVATE = ['/run/libvirt', '/var/lib/libvirt', '/var/cache/libvirt', '/var/log/libvirt',
           '/etc/libvirt/qemu']
URI = 'qemu:///system'


def sh(*cmd, **kw):
    return subprocess.run(list(cmd), check=True, capture_output=True, text=True, **kw).stdout


def virsh(*args, check=True):
    return subprocess.run(['virsh', '-c', URI] + list(args), capture_output=True, text=True,
                          check=check, timeout=120)


def inner(imgcheck):
    for d in PRIVATE:
        os.makedirs(d, exist_ok=True)
        subprocess.run(['mount', '-t', 'tmpfs', 'imgcheck-test', d], check=True)
    daemon = shutil.which('libvirtd') or '/usr/sbin/libvirtd'
    log = open('/var/log/libvirt/imgcheck-test.log', 'w')
    t0 = time.monotonic()
    proc = subprocess.Popen([daemon, '--pid-file', '/run/libvirt/imgcheck-test.pid'],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    work = tempfile.mkdtemp(prefix='imgcheck-libvirtd-')
    results = []

    def case(name, ok, why=''):
        results.append(ok)
        print('%s %s%s' % ('PASS' if ok else 'FAIL', name, '' if ok else ': ' + why), flush=True)

    try:
        for _ in range(300):  # the QEMU driver probes QEMU's capabilities first (TCG: seconds)
            if proc.poll() is not None:
                raise RuntimeError('libvirtd exited with %d' % proc.returncode)
            if virsh('version', check=False).returncode == 0:
                break
            time.sleep(0.2)
        else:
            raise RuntimeError('libvirtd did not answer within 60 s')
        print('libvirtd up in %.1f s' % (time.monotonic() - t0), flush=True)
        os.chmod(work, 0o755)
        base = os.path.join(work, 'base.qcow2')
        ov = os.path.join(work, 'ov.qcow2')
        sh('qemu-img', 'create', '-q', '-f', 'qcow2', base, '64M')
        sh('qemu-img', 'create', '-q', '-f', 'qcow2', '-b', 'base.qcow2', '-F', 'qcow2', ov)
        bc.drop_extension(ov, bc.EXT_BACKING_FORMAT)  # libvirt refuses this chain
        closed = os.path.join(work, 'closed')
        os.makedirs(closed)
        os.chmod(closed, 0o700)
        data = os.path.join(closed, 'data.qcow2')
        sh('qemu-img', 'create', '-q', '-f', 'qcow2', data, '64M')
        xml = sh('virt-install', '--connect', URI, '--print-xml', '--name', 'imgcheck-e2e',
                 '--memory', '512', '--import', '--osinfo', 'detect=off,name=generic',
                 '--virt-type', 'qemu', '--noautoconsole', '--graphics', 'none',
                 '--disk', 'path=%s,driver.type=qcow2,bus=virtio' % ov,
                 '--disk', 'path=%s,driver.type=qcow2,bus=sata' % data)
        path = os.path.join(work, 'dom.xml')
        with open(path, 'w') as f:
            f.write(xml)
        virsh('define', path)
        state = virsh('domstate', 'imgcheck-e2e').stdout.strip()
        case('defined-not-started', state == 'shut off', 'state %r' % state)
        p = subprocess.run([imgcheck, 'check', '--no-guest', '--output', 'json', '-d',
                            'imgcheck-e2e', '-c', URI], capture_output=True, text=True, timeout=120)
        objs = [json.loads(l) for l in p.stdout.splitlines() if l.strip()]
        fs = [f for o in objs for f in o.get('findings', [])]
        slugs = {f['slug'] for f in fs}
        case('disks', [(o.get('vm') or {}).get('guest-name') for o in objs] == ['vda', 'sda'] and
             all(o['vm']['domain'] == 'imgcheck-e2e' for o in objs),
             'vm: %s stderr %r' % ([o.get('vm') for o in objs], p.stderr[-300:]))
        case('backing-format-missing', 'vm.backing-format-missing' in slugs, 'findings %s' % sorted(slugs))
        denied = [f for f in fs if f['slug'] == 'vm.storage-access-denied']
        case('qemu-user-cannot-search', bool(denied) and closed in denied[0]['message'],
             'findings %s' % sorted(slugs))
        case('exit-code', p.returncode == 2, 'exit %d' % p.returncode)
        p = subprocess.run([imgcheck, 'info', '--output', 'json', '-d', 'imgcheck-e2e', '-c', URI],
                           capture_output=True, text=True, timeout=120)
        j = json.loads(p.stdout) if p.stdout.strip() else {}
        m = j.get('domain', {})
        case('info', m.get('name') == 'imgcheck-e2e' and m.get('machine', '').startswith('pc') and
             len(m.get('disks', [])) == 2, 'info %r' % p.stdout[:300])
        state = virsh('domstate', 'imgcheck-e2e').stdout.strip()
        case('still-not-started', state == 'shut off', 'state %r' % state)
    except (RuntimeError, subprocess.CalledProcessError, subprocess.TimeoutExpired, ValueError) as e:
        detail = e.stderr if isinstance(e, subprocess.CalledProcessError) else e
        case('setup', False, str(detail).strip()[-500:])
        log.flush()
        with open('/var/log/libvirt/imgcheck-test.log') as f:
            print(f.read()[-1500:])
    finally:
        virsh('undefine', '--nvram', 'imgcheck-e2e', check=False)
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(work, ignore_errors=True)
    npass = sum(results)
    print('%d passed, %d failed' % (npass, len(results) - npass))
    return 0 if all(results) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--imgcheck', required=True)
    ap.add_argument('--inner', action='store_true', help=argparse.SUPPRESS)
    a = ap.parse_args()
    imgcheck = os.path.abspath(a.imgcheck)
    if a.inner:
        return inner(imgcheck)
    missing = [t for t in ('libvirtd', 'virsh', 'virt-install', 'unshare') if not shutil.which(t)
               and not os.path.exists('/usr/sbin/' + t)]
    if os.geteuid() != 0 or missing:
        print('FAIL setup: needs root and %s (.ci/install-deps installs libvirt-daemon-system, '
              'libvirt-clients, virtinst)' % (', '.join(missing) or 'nothing else'))
        print('0 passed, 1 failed')
        return 1
    return subprocess.call(['unshare', '-m', '--propagation', 'private', sys.executable,
                            os.path.abspath(__file__), '--imgcheck', imgcheck, '--inner'])


if __name__ == '__main__':
    sys.exit(main())
