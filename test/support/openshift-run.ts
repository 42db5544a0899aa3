import { spawnSync } from 'node:child_process';

/**
 * Runs a command as OpenShift's restricted-v2 SCC runs a container, without a container engine:
 * in a mount namespace of its own (unshare --mount, so nothing leaks to the host) where the
 * application directory is bind-mounted read-only onto itself (readOnlyRootFilesystem), as a
 * random UID from a namespace's range with group 0 and no other group (runAsUser picked by
 * OpenShift, image USER ignored), no capabilities and no privilege escalation (capabilities.drop:
 * [ALL], allowPrivilegeEscalation: false). Every step execs the next, so the returned command's
 * process is the command's own: signals reach it directly. Needs root with CAP_SYS_ADMIN.
 */
export function asOpenShiftRuns(readOnlyDirectory: string, uid: number, argv: readonly string[]): { command: string; args: string[] } {
  const script =
    'mount --bind -o ro "$1" "$1" && uid=$2 && shift 2 && ' +
    'exec setpriv --reuid="$uid" --regid=0 --clear-groups --no-new-privs --inh-caps=-all --bounding-set=-all -- "$@"';
  return { command: 'unshare', args: ['--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', readOnlyDirectory, String(uid), ...argv] };
}

/** A UID as OpenShift allocates them per namespace (1000xx0000 and up), never the image's 1001. */
export function randomOpenShiftUid(): number {
  return 1_000_600_000 + Math.floor(Math.random() * 100_000);
}

/** [] when this process can run asOpenShiftRuns (root, CAP_SYS_ADMIN, util-linux); otherwise what is missing. */
export function openShiftRunMissing(): string[] {
  const probe = spawnSync(
    'sh',
    ['-c', 'd=$(mktemp -d) && unshare --mount --propagation private sh -c \'mount --bind -o ro "$0" "$0" && exec setpriv --reuid=65534 --regid=0 --clear-groups --no-new-privs -- true\' "$d"; s=$?; rmdir "$d"; exit $s'],
    { stdio: 'ignore' },
  );
  return probe.status === 0 ? [] : ['unshare --mount, mount --bind and setpriv (root with CAP_SYS_ADMIN, util-linux)'];
}
