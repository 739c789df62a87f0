/* escape: tries the system calls Docker's default seccomp profile refuses and prints one
 * "name=RESULT" line each (RESULT: ok or the errno's name). Built static at test time. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char *name(long r) {
    if (r >= 0) return "ok";
    switch (errno) {
    case EPERM: return "EPERM";
    case ENOSYS: return "ENOSYS";
    case EINVAL: return "EINVAL";
    case EFAULT: return "EFAULT";
    case ENOENT: return "ENOENT";
    case EACCES: return "EACCES";
    case EBADF: return "EBADF";
    case EEXIST: return "EEXIST";
    case EDQUOT: return "EDQUOT";
    default: return strerror(errno);
    }
}

int main(void) {
    long r;
    /* KEYCTL_GET_KEYRING_ID (0) of the session keyring (-3), create = 0 */
    r = syscall(SYS_keyctl, 0, -3, 0);
    printf("keyctl=%s\n", name(r));
    r = syscall(SYS_add_key, "user", "strata-test", "x", 1, -3);
    printf("add_key=%s\n", name(r));
    r = unshare(CLONE_NEWUSER);
    printf("unshare_user=%s\n", name(r));
    r = mount("none", "/tmp", "tmpfs", 0, NULL);
    printf("mount=%s\n", name(r));
    /* BPF_PROG_LOAD with no attributes: EPERM under seccomp, EINVAL/EFAULT past it */
    r = syscall(SYS_bpf, 5, NULL, 0);
    printf("bpf=%s\n", name(r));
    r = syscall(SYS_kexec_load, 0, 0, NULL, 0);
    printf("kexec_load=%s\n", name(r));
    /* clone3 with a NULL argument: ENOSYS under Docker's profile, EFAULT/EINVAL past it */
    r = syscall(435 /* clone3 */, NULL, 0);
    printf("clone3=%s\n", name(r));
    /* personality(PER_LINUX): allowed; personality(0x0400000): refused */
    r = syscall(SYS_personality, 0xffffffff);
    printf("personality_query=%s\n", name(r));
    r = syscall(SYS_personality, 0x0400000);
    printf("personality_other=%s\n", name(r));
    return 0;
}
