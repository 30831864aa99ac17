// SPDX-License-Identifier: GPL-2.0
/*
 * remaplab-init: the guest's /init.  As PID 1 it honours init= as the kernel does for a root
 * file system (exec it; if that fails, PID 1 exits and the kernel panics), else starts the guest
 * and hands over to busybox init, which reaps orphans for the life of the guest.  Run by busybox
 * init's inittab (init=/sbin/init), it starts the guest and exits.
 *
 * The start-up: mount the file systems of /etc/fstab and devpts, load the boot modules
 * (/etc/remaplab/boot-modules, stage by stage), bring up the network, mount the kernel's module
 * tree and the --share folders over 9p, start the SSH server beside all that, then say
 * "remaplab: ready RELEASE" on the console.  Any failure says "remaplab: init failed: WHAT" on
 * the console and powers the guest off, so the host sees it at once.
 *
 * It was a busybox shell script.  Under TCG every process costs (a fork 3 ms, an exec 6 ms, more
 * the first time), and the script ran one per module, mount and network step; here they are
 * system calls, a thread per module (finit_module).  Kernel log, arm64 TCG: /init to the SSH
 * server 0.29 s -> 0.18-0.23 s.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/module.h>

#define PATH_ENV "/usr/local/bin:/usr/bin:/usr/sbin:/bin:/sbin"
#define BOOT_MODULES "/etc/remaplab/boot-modules"
#define MODULES_SHARE "/etc/remaplab/modules-share"
#define MAX_MODULES 256
#define MAX_CMDLINE 4096
#define SHARE_PREFIX "remaplab.share"
#define SEPARATORS " \t\n"
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE 4 /* Linux 5.17 */
#endif

/*
 * printf to the file at path in one write(2): /dev/kmsg takes each write as one record (and
 * dprintf fails there: glibc's lseek, EINVAL).  Returns 0, or the errno of what failed (EIO
 * for a short write).
 */
static int say(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int say(const char *path, const char *fmt, ...)
{
	char text[512];
	va_list ap;
	int fd, n, err = 0;
	ssize_t done;

	va_start(ap, fmt);
	n = vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (n < 0)
		return EINVAL;
	if (n >= (int)sizeof(text)) {
		n = sizeof(text) - 1;
		text[n - 1] = '\n';
	}
	fd = open(path, O_WRONLY | O_NOCTTY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	done = write(fd, text, n);
	if (done < 0)
		err = errno;
	else if (done != n)
		err = EIO;
	close(fd);
	return err;
}

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* "remaplab: init failed: WHAT" on the console, then power off (as busybox's poweroff -f). */
static void fail(const char *fmt, ...)
{
	char what[400];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (say("/dev/console", "remaplab: init failed: %s\n", what))
		dprintf(2, "remaplab: init failed: %s\n", what);
	sync();
	reboot(RB_POWER_OFF);
	_exit(1); /* reboot() refused: as PID 1 the kernel panics, which the host sees too */
}

/*
 * Milestones in the kernel log (its timestamps; below the console's level, so `dmesg` only):
 * where a boot's time goes, read by `dmesg | grep 'remaplab: at'` (lab/bootphases.py).
 */
static void at(const char *name)
{
	say("/dev/kmsg", "remaplab: at %s\n", name);
}

static void mkdirs(const char *path)
{
	char buf[PATH_MAX];
	char *p;

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		fail("path too long: %.64s...", path);
	for (p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) && errno != EEXIST)
			fail("mkdir %s: %s", buf, strerror(errno));
		*p = '/';
	}
	if (mkdir(buf, 0755) && errno != EEXIST)
		fail("mkdir %s: %s", buf, strerror(errno));
}

static void mount_or_fail(const char *src, const char *dir, const char *type,
			  unsigned long flags, const char *data)
{
	if (mount(src, dir, type, flags, data) && errno != EBUSY)
		fail("mount %s (%s) on %s: %s", src, type, dir, strerror(errno));
}

static const struct {
	const char *name;
	unsigned long flag;
} mount_flags[] = {
	{ "ro", MS_RDONLY },	  { "nosuid", MS_NOSUID },     { "nodev", MS_NODEV },
	{ "noexec", MS_NOEXEC },  { "relatime", MS_RELATIME }, { "noatime", MS_NOATIME },
	{ "sync", MS_SYNCHRONOUS },
	/* the defaults: no flag */
	{ "rw", 0 }, { "defaults", 0 }, { "exec", 0 }, { "suid", 0 }, { "dev", 0 },
	{ "async", 0 }, { "atime", 0 }, { "auto", 0 }, { "nofail", 0 },
};

/*
 * /etc/fstab's file systems, as busybox's `mount -a` mounts them: "noauto" ones left out,
 * "nofail" ones may fail, other options passed to the file system.
 */
static void mount_fstab(void)
{
	FILE *tab = setmntent("/etc/fstab", "re");
	struct mntent *m;

	if (!tab)
		fail("/etc/fstab: %s", strerror(errno));
	while ((m = getmntent(tab))) {
		char data[256] = "", opts[256];
		unsigned long flags = 0;
		char *opt, *save;
		size_t i;

		if (hasmntopt(m, "noauto"))
			continue;
		if (snprintf(opts, sizeof(opts), "%s", m->mnt_opts) >= (int)sizeof(opts))
			fail("/etc/fstab: options of %s too long", m->mnt_dir);
		for (opt = strtok_r(opts, ",", &save); opt; opt = strtok_r(NULL, ",", &save)) {
			for (i = 0; i < ARRAY_SIZE(mount_flags); i++)
				if (!strcmp(opt, mount_flags[i].name))
					break;
			if (i < ARRAY_SIZE(mount_flags))
				flags |= mount_flags[i].flag;
			else /* data is never longer than opts */
				snprintf(data + strlen(data), sizeof(data) - strlen(data), "%s%s",
					 data[0] ? "," : "", opt);
		}
		if (mount(m->mnt_fsname, m->mnt_dir, m->mnt_type, flags, data) && errno != EBUSY &&
		    !hasmntopt(m, "nofail"))
			fail("mount %s on %s: %s", m->mnt_type, m->mnt_dir, strerror(errno));
	}
	endmntent(tab);
}

/* A child running argv (found on PATH) with stdin from /dev/null; its pid. */
static pid_t spawn(char *const argv[])
{
	pid_t pid = fork();

	if (pid < 0)
		fail("fork for %s: %s", argv[0], strerror(errno));
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		if (null >= 0 && null != 0) {
			dup2(null, 0);
			close(null);
		}
		execvp(argv[0], argv);
		dprintf(2, "remaplab: cannot run %s: %s\n", argv[0], strerror(errno));
		_exit(127);
	}
	return pid;
}

/* Wait for the child pid: 0 when it exited 0, -1 when it did not, an errno if the wait failed. */
static int reap(pid_t pid)
{
	int status;

	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return errno;
	return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
}

static void wait_ok(pid_t pid, const char *what)
{
	int err = reap(pid);

	if (err > 0)
		fail("%s: wait: %s", what, strerror(err));
	if (err)
		fail("%s", what);
}

struct module {
	char path[PATH_MAX];
	const char *rel;	/* path under /lib/modules/RELEASE: what a failure names */
	int stage;
	int error;		/* errno of the load; -1: busybox insmod failed; 0: loaded */
	int threaded;		/* loaded by thread */
	pthread_t thread;
};

static int compressed(const char *path)
{
	size_t n = strlen(path);

	return n < 3 || strcmp(path + n - 3, ".ko");
}

/*
 * Load one module.  A compressed one the kernel decompresses itself (Linux 5.17,
 * CONFIG_MODULE_DECOMPRESS); a kernel that cannot hands it to busybox insmod (xz and gzip).
 */
static void *load_module(void *arg)
{
	char *insmod[] = { "/bin/busybox", "insmod", NULL, NULL };
	struct module *mod = arg;
	int packed = compressed(mod->path);
	int fd;

	fd = open(mod->path, O_RDONLY | O_CLOEXEC);
	mod->error = 0;
	if (fd < 0 ||
	    syscall(SYS_finit_module, fd, "", packed ? MODULE_INIT_COMPRESSED_FILE : 0))
		mod->error = errno;
	if (fd >= 0)
		close(fd);
	if (!packed || fd < 0 || (mod->error != EINVAL && mod->error != EOPNOTSUPP))
		return NULL;
	insmod[2] = mod->path;
	mod->error = reap(spawn(insmod));
	return NULL;
}

/* One stage's modules, waited for in their order: the first that failed fails the boot. */
static void finish_stage(struct module *mods, int from, int to)
{
	int i;

	for (i = from; i < to; i++) {
		if (mods[i].threaded)
			pthread_join(mods[i].thread, NULL);
		if (mods[i].error == -1)
			fail("insmod %s (busybox insmod failed)", mods[i].rel);
		if (mods[i].error)
			fail("insmod %s: %s", mods[i].rel, strerror(mods[i].error));
	}
}

/*
 * The boot modules: /etc/remaplab/boot-modules lists "STAGE PATH" lines, dependencies in
 * earlier stages.  One stage's modules load at once (a thread each), each stage after the last.
 */
static void load_boot_modules(const char *release)
{
	static struct module mods[MAX_MODULES];
	FILE *list = fopen(BOOT_MODULES, "re");
	char line[PATH_MAX + 32], rel[PATH_MAX], extra;
	int n = 0, first = 0, number = 0, stage;

	if (!list) {
		if (errno == ENOENT)
			return; /* a kernel with them built in */
		fail(BOOT_MODULES ": %s", strerror(errno));
	}
	while (fgets(line, sizeof(line), list)) {
		struct module *mod = &mods[n];

		number++;
		if (!strchr(line, '\n') && !feof(list))
			fail(BOOT_MODULES ":%d: line too long", number);
		line[strcspn(line, "\n")] = '\0';
		if (strspn(line, SEPARATORS) == strlen(line))
			continue;
		if (sscanf(line, "%d %4095s %c", &stage, rel, &extra) != 2)
			fail(BOOT_MODULES ":%d: not \"STAGE PATH\": %.64s", number, line);
		if (n == MAX_MODULES)
			fail(BOOT_MODULES ": more than %d modules", MAX_MODULES);
		if (n > first && stage != mods[first].stage) {
			finish_stage(mods, first, n);
			first = n;
		}
		mod->stage = stage;
		if (snprintf(mod->path, sizeof(mod->path), "/lib/modules/%s/%s", release, rel) >=
		    (int)sizeof(mod->path))
			fail(BOOT_MODULES ":%d: path too long", number);
		mod->rel = mod->path + strlen(mod->path) - strlen(rel);
		mod->threaded = !pthread_create(&mod->thread, NULL, load_module, mod);
		if (!mod->threaded)
			load_module(mod); /* no thread: load it here */
		n++;
	}
	if (ferror(list))
		fail(BOOT_MODULES ": read error");
	fclose(list);
	finish_stage(mods, first, n);
}

static void set_flags_up(int sock, const char *name)
{
	struct ifreq ifr = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	if (ioctl(sock, SIOCGIFFLAGS, &ifr))
		fail("no %s%s: %s", name, strcmp(name, "lo") ? " (virtio_net missing?)" : "",
		     strerror(errno));
	ifr.ifr_flags |= IFF_UP;
	if (ioctl(sock, SIOCSIFFLAGS, &ifr))
		fail("%s up: %s", name, strerror(errno));
}

static void set_inet(struct sockaddr *sa, const char *addr)
{
	struct sockaddr_in *in = (struct sockaddr_in *)sa;

	in->sin_family = AF_INET;
	inet_pton(AF_INET, addr, &in->sin_addr);
}

/* QEMU's user-mode network: 10.0.2.15/24, gateway 10.0.2.2 (as `ip addr`, `ip route` did). */
static void network_up(int sock)
{
	struct ifreq ifr = { 0 };
	struct rtentry rt = { 0 };

	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "eth0");
	set_inet(&ifr.ifr_addr, "10.0.2.15");
	if (ioctl(sock, SIOCSIFADDR, &ifr))
		fail("no eth0 (virtio_net missing?): %s", strerror(errno));
	set_inet(&ifr.ifr_netmask, "255.255.255.0");
	if (ioctl(sock, SIOCSIFNETMASK, &ifr))
		fail("eth0 netmask: %s", strerror(errno));
	set_flags_up(sock, "eth0");
	set_inet(&rt.rt_dst, "0.0.0.0");
	set_inet(&rt.rt_genmask, "0.0.0.0");
	set_inet(&rt.rt_gateway, "10.0.2.2");
	rt.rt_flags = RTF_UP | RTF_GATEWAY;
	if (ioctl(sock, SIOCADDRT, &rt) && errno != EEXIST)
		fail("default route: %s", strerror(errno));
}

/*
 * Host folders shared read-write (remaplab boot --share DIR): the kernel command line names each
 * one's 9p tag and path as remaplab.shareN=PATH (lab/qemu.py); mounted at the same path.
 */
static void mount_shares(char *cmdline)
{
	char *word, *save, *eq;

	for (word = strtok_r(cmdline, SEPARATORS, &save); word;
	     word = strtok_r(NULL, SEPARATORS, &save)) {
		if (strncmp(word, SHARE_PREFIX, strlen(SHARE_PREFIX)) ||
		    !isdigit((unsigned char)word[strlen(SHARE_PREFIX)]))
			continue;
		eq = strchr(word, '=');
		if (!eq || eq[1] != '/')
			continue;
		*eq = '\0';
		mkdirs(eq + 1);
		if (mount(word + strlen("remaplab."), eq + 1, "9p", 0,
			  "trans=virtio,version=9p2000.L,cache=mmap,msize=262144"))
			fail("mount the shared folder %s over 9p: %s", eq + 1, strerror(errno));
	}
}

static void read_cmdline(char *buf, size_t size)
{
	int fd = open("/proc/cmdline", O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, size - 1) : -1;

	if (n < 0)
		fail("/proc/cmdline: %s", strerror(errno));
	buf[n] = '\0';
	close(fd);
}

/*
 * As PID 1: init=PROGRAM on the command line is exec'd instead of the lab's start-up (but
 * init=/init, this program, which would exec itself for ever).
 */
static void exec_init_param(const char *cmdline)
{
	char copy[MAX_CMDLINE], *word, *save;

	snprintf(copy, sizeof(copy), "%s", cmdline);
	for (word = strtok_r(copy, SEPARATORS, &save); word;
	     word = strtok_r(NULL, SEPARATORS, &save)) {
		if (strncmp(word, "init=", 5) || !strcmp(word, "init=/init"))
			continue;
		execl(word + 5, word + 5, (char *)NULL);
		dprintf(2, "remaplab: cannot exec init %s: %s\n", word + 5, strerror(errno));
		exit(127);
	}
}

static void start_guest(char *cmdline)
{
	char *install[] = { "/bin/busybox", "--install", "-s", NULL };
	char *dropbear[] = { "dropbear", "-r", "/etc/dropbear/dropbear_ed25519_host_key",
			     "-s", "-p", "22", "-P", "/run/dropbear.pid", NULL };
	char mods[PATH_MAX];
	struct utsname uts;
	pid_t links, sshd;
	int sock, err;

	mount_fstab();
	mkdirs("/dev/pts");
	mkdirs("/dev/shm");
	mount_or_fail("devpts", "/dev/pts", "devpts", 0, "gid=5,mode=620,ptmxmode=666");
	at("mounted");

	/*
	 * Beside the start-up, from here (stdin /dev/null, which the new /dev has): the applets'
	 * links, for programs that exec a command by name, and the SSH server, which needs only its
	 * key (it returns once it listens).  Both waited for before "ready".
	 */
	links = spawn(install);
	sshd = spawn(dropbear);
	sock = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (sock < 0)
		fail("socket: %s", strerror(errno));
	set_flags_up(sock, "lo");

	uname(&uts);
	load_boot_modules(uts.release);
	at("boot-modules");

	network_up(sock);
	close(sock);
	at("network");

	if (!access(MODULES_SHARE, F_OK)) {
		snprintf(mods, sizeof(mods), "/lib/modules/%s/kernel", uts.release);
		mkdirs(mods);
		if (mount("modules", mods, "9p", MS_RDONLY,
			  "trans=virtio,version=9p2000.L,cache=loose"))
			fail("mount the module tree over 9p: %s", strerror(errno));
	}
	mount_shares(cmdline);
	at("9p");

	wait_ok(links, "busybox --install -s");
	wait_ok(sshd, "dropbear did not start");
	at("dropbear");

	/* Full console log level from here on: WARNINGs and oopses reach the host's watcher. */
	err = say("/proc/sys/kernel/printk", "8\n");
	if (err)
		fail("/proc/sys/kernel/printk: %s", strerror(err));
	err = say("/dev/console", "remaplab: ready %s\n", uts.release);
	if (err)
		fail("/dev/console: %s", strerror(err));
}

int main(void)
{
	static char cmdline[MAX_CMDLINE];
	int pid1 = getpid() == 1;

	if (!pid1 && getenv("REMAPLAB_STARTED"))
		return 0; /* busybox init's inittab, after /init started the guest */
	setenv("PATH", PATH_ENV, 1);
	/* Not PID 1: the /init that exec'd init=/sbin/init (which runs this) mounted it. */
	if (access("/proc/self", F_OK))
		mount_or_fail("proc", "/proc", "proc", 0, NULL);
	read_cmdline(cmdline, sizeof(cmdline));
	if (pid1)
		exec_init_param(cmdline);
	start_guest(cmdline);
	if (!pid1)
		return 0;
	setenv("REMAPLAB_STARTED", "1", 1);
	execl("/bin/busybox", "/bin/busybox", "init", (char *)NULL);
	fail("exec busybox init: %s", strerror(errno));
}
