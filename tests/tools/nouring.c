/*
 * nouring - run a command with io_uring disabled, as a seccomp-confined
 * container would: io_uring_setup(2), io_uring_enter(2) and
 * io_uring_register(2) fail with EPERM, and so does memfd_create(2),
 * which tighter sandboxes refuse too.  Everything else is allowed.
 *
 *	nouring command [argument ...]
 *
 * Used by tests/bats/60-uring.bats to check the fallbacks: plain
 * syscalls for the I/O engine, and a reader's buffer in plain memory
 * rather than a ring mapped twice (libspool/rbuf.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>

#ifndef __NR_io_uring_setup
#define __NR_io_uring_setup	425
#endif
#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter	426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register	427
#endif

#if defined(__x86_64__)
#define ARCH_NR	AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define ARCH_NR	AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define ARCH_NR	AUDIT_ARCH_I386
#elif defined(__riscv) && __riscv_xlen == 64
#define ARCH_NR	AUDIT_ARCH_RISCV64
#elif defined(__powerpc64__) && defined(__LITTLE_ENDIAN__)
#define ARCH_NR	AUDIT_ARCH_PPC64LE
#elif defined(__s390x__)
#define ARCH_NR	AUDIT_ARCH_S390X
#else
#error "nouring: unknown architecture"
#endif

#define DENY(nr) \
	BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
	BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA))

int
main(int argc, char *argv[])
{
	struct sock_filter filter[] = {
		/* refuse to run under another ABI (e.g. x32 or ia32 on x86_64) */
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_NR, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
		    offsetof(struct seccomp_data, nr)),
		DENY(__NR_io_uring_setup),
		DENY(__NR_io_uring_enter),
		DENY(__NR_io_uring_register),
		DENY(__NR_memfd_create),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = {
		.len = (unsigned short)(sizeof filter / sizeof filter[0]),
		.filter = filter,
	};

	if (argc < 2) {
		fprintf(stderr, "usage: nouring command [argument ...]\n");
		return 64;
	}
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == -1) {
		fprintf(stderr, "nouring: PR_SET_NO_NEW_PRIVS: %s\n",
		    strerror(errno));
		return 71;
	}
	if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) == -1) {
		fprintf(stderr, "nouring: PR_SET_SECCOMP: %s\n",
		    strerror(errno));
		return 71;
	}
	execvp(argv[1], argv + 1);
	fprintf(stderr, "nouring: %s: %s\n", argv[1], strerror(errno));
	return errno == ENOENT ? 127 : 126;
}
