/*
 * code-runner-init: PID 1 of every code-runner job container (docker backend).
 *
 * A job container is created and started before its job is known (the
 * worker's pool), with this program as its only process, blocked reading its
 * standard input. For the job, the worker attaches to the container and
 * writes a header (below) followed by the program's standard input. This
 * program then:
 *
 *   1. writes the job's files into /work (its working directory), as the job
 *      user, never following a link and never replacing a file;
 *   2. forks the program with the header's environment, rlimits and seccomp
 *      filters; the program's standard input is the rest of the stream;
 *   3. reaps every process (it is the PID namespace's init), and every 20 ms
 *      reads the container's CPU time (its cgroup's; under gVisor, which has
 *      no cgroup files inside, every 100 ms from /proc): when the whole tree has used the
 *      header's CPU limit (RLIMIT_CPU alone counts each process apart), or
 *      when the worker asks (SIGUSR1 from outside the container: its wall
 *      clock ran out), it kills every process of the program;
 *   4. when the program exits, kills every process left in the container,
 *      reaps them, reads the container's cgroup statistics and writes one
 *      status record on standard output and on standard error -- the last
 *      bytes of each, since nothing else is alive to write after it:
 *
 *        "\0code-runner-init:<nonce>:<exit>:<signal>:<cpu_us>:<memory_peak>:<oom_kills>\n"
 *
 *      (-1 for what is unknown), and exits: the container ends with it. With
 *      the "linger" flag it waits instead, so that the worker can still copy
 *      /work out of the running container (a compile step's output) before
 *      removing it.
 *
 * The worker takes the record with its nonce, on both streams, as the end of
 * the step. The
 * nonce is secret from the program: this process makes itself non-dumpable
 * before reading anything, so that the program, although it runs as the same
 * user, can neither read nor write this process's memory (/proc/1/mem), nor
 * trace it (the seccomp filters refuse ptrace too).
 *
 * Header, integers little-endian, strings as u32 length + bytes:
 *   "CRI2" ("CRI1": the same without the CPU-time limit)
 *   u32 flags: 1 = linger
 *   u64 CPU-time limit of the whole tree in microseconds (0: none)
 *   string nonce (at most 64 bytes, no ':')
 *   u32 n, then n seccomp filters: string of the kernel's struct sock_filter
 *       array (installed in order)
 *   u32 n, then n rlimits: u32 resource, u64 soft, u64 hard
 *   u32 n, then n environment strings "NAME=value"
 *   u32 n >= 1, then n argv strings
 *   u32 n, then n entries of /work: u32 kind (0 file, 1 directory), u32 mode,
 *       string relative path (plain components), and for a file its contents
 *       as a string (streamed to the file)
 *
 * The worker enforces the wall clock and the output cap from outside (it asks
 * this process for the record, then kills the container); the kernel enforces
 * memory, processes (cgroups), CPU time and file sizes (rlimits), and this
 * process the CPU time of the whole tree, which the kernel counts (the
 * cgroup). A program that stops this process (it runs as the same user:
 * SIGSTOP, or starving it of CPU) escapes only the tree's CPU limit, not the
 * wall clock, the CFS quota or any cgroup limit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <dirent.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_ITEMS 65536u
#define MAX_STRING (64u << 20)

extern char **environ;

static void die(int code, const char *what) {
    dprintf(2, "code-runner-init: %s\n", what);
    _exit(code);
}

/* Reads exactly len bytes; exits quietly when the worker hung up before
 * sending a whole header (a pool container being discarded). */
static void read_exact(void *buf, size_t len) {
    char *p = buf;
    while (len > 0) {
        ssize_t n = read(0, p, len);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) die(125, "cannot read the header");
        if (n == 0) _exit(0);
        p += n;
        len -= (size_t)n;
    }
}

static uint32_t read_u32(void) {
    unsigned char b[4];
    read_exact(b, sizeof b);
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

static uint64_t read_u64(void) {
    uint64_t lo = read_u32();
    uint64_t hi = read_u32();
    return lo | hi << 32;
}

static uint32_t read_count(void) {
    uint32_t n = read_u32();
    if (n > MAX_ITEMS) die(125, "header count too large");
    return n;
}

/* A NUL-terminated string of at most max bytes, with no NUL inside. */
static char *read_string(uint32_t max) {
    uint32_t len = read_u32();
    if (len > max) die(125, "header string too long");
    char *s = malloc((size_t)len + 1);
    if (!s) die(125, "out of memory");
    read_exact(s, len);
    s[len] = '\0';
    if (strlen(s) != len) die(125, "NUL inside a header string");
    return s;
}

static char **read_strings(uint32_t n) {
    char **v = calloc((size_t)n + 1, sizeof *v);
    if (!v) die(125, "out of memory");
    for (uint32_t i = 0; i < n; i++) v[i] = read_string(MAX_STRING);
    return v;
}

/* Opens the directory holding `path` (relative to /work), creating the
 * directories on the way; *base is set to the last component. Components
 * must be plain names; no link is followed. */
static int parent_dir(char *path, char **base) {
    int dir = open(".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) die(125, "cannot open /work");
    char *component = path;
    for (;;) {
        char *slash = strchr(component, '/');
        if (*component == '\0' || strcmp(component, ".") == 0 || strcmp(component, "..") == 0 ||
            component == slash)
            die(125, "not a plain relative path");
        if (!slash) break;
        *slash = '\0';
        if (strcmp(component, ".") == 0 || strcmp(component, "..") == 0)
            die(125, "not a plain relative path");
        if (mkdirat(dir, component, 0755) != 0 && errno != EEXIST) die(125, "cannot create a directory");
        int next = openat(dir, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next < 0) die(125, "cannot open a directory");
        close(dir);
        dir = next;
        *slash = '/';
        component = slash + 1;
    }
    *base = component;
    return dir;
}

static void write_entries(uint32_t n) {
    static char buf[65536];
    for (uint32_t i = 0; i < n; i++) {
        uint32_t kind = read_u32();
        mode_t mode = (mode_t)(read_u32() & 0755);
        char *path = read_string(4096);
        char *base;
        int dir = parent_dir(path, &base);
        if (kind == 1) {
            if (mkdirat(dir, base, mode) != 0 && errno != EEXIST) die(125, "cannot create a directory");
        } else {
            int fd = openat(dir, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
            if (fd < 0) die(125, "cannot create a file in /work");
            uint32_t left = read_u32();
            while (left > 0) {
                size_t chunk = left < sizeof buf ? left : sizeof buf;
                read_exact(buf, chunk);
                for (size_t done = 0; done < chunk;) {
                    ssize_t w = write(fd, buf + done, chunk - done);
                    if (w < 0 && errno == EINTR) continue;
                    if (w <= 0) die(125, "cannot write a file in /work (scratch full?)");
                    done += (size_t)w;
                }
                left -= (uint32_t)chunk;
            }
            if (fchmod(fd, mode) != 0) die(125, "cannot set a file's mode");
            close(fd);
        }
        close(dir);
        free(path);
    }
}

/* The first number in a file after `key` (or at its start when key is NULL). */
static long long read_stat(const char *path, const char *key) {
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = '\0';
    const char *p = buf;
    if (key) {
        size_t klen = strlen(key);
        for (;;) {
            if (strncmp(p, key, klen) == 0 && p[klen] == ' ') break;
            p = strchr(p, '\n');
            if (!p) return -1;
            p++;
        }
        p += klen;
    }
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    if (end == p || errno) return -1;
    return v;
}

static long long first_of(long long a, long long b) { return a >= 0 ? a : b; }

/* The CPU time of the container's cgroup in microseconds (v2, then v1), -1
 * when neither is readable. */
static long long cgroup_cpu_us(void) {
    long long v2 = read_stat("/sys/fs/cgroup/cpu.stat", "usage_usec");
    if (v2 >= 0) return v2;
    long long v1_ns = read_stat("/sys/fs/cgroup/cpuacct/cpuacct.usage", NULL);
    return v1_ns >= 0 ? v1_ns / 1000 : -1;
}

/* The CPU time of the program's processes, from /proc, in microseconds, for
 * a runtime without cgroup files inside (gVisor): each process's own time and
 * its waited-for children's (utime, stime, cutime, cstime), which counts
 * every process once, the dead ones in whoever waited for them; this
 * process's own time left out. */
static long long proc_cpu_us(void) {
    DIR *proc = opendir("/proc");
    if (!proc) return -1;
    long long ticks = 0;
    struct dirent *entry;
    while ((entry = readdir(proc))) {
        char *end;
        long pid = strtol(entry->d_name, &end, 10);
        if (pid <= 0 || *end != '\0') continue;
        char path[64], buf[1024];
        snprintf(path, sizeof path, "/proc/%ld/stat", pid);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) continue;
        ssize_t n = read(fd, buf, sizeof buf - 1);
        close(fd);
        if (n <= 0) continue;
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* after the command name, which may hold anything */
        if (!p) continue;
        /* Fields 3.. follow; utime, stime, cutime, cstime are 14 to 17. */
        long long times[4] = {0, 0, 0, 0};
        int field = 2;
        for (char *tok = strtok(p + 1, " "); tok && field < 17; tok = strtok(NULL, " ")) {
            field++;
            if (field >= 14) times[field - 14] = strtoll(tok, NULL, 10);
        }
        /* This process's own time (the polling) is not the program's. */
        ticks += (pid == 1 ? 0 : times[0] + times[1]) + times[2] + times[3];
    }
    closedir(proc);
    long hz = sysconf(_SC_CLK_TCK);
    return hz > 0 ? ticks * (1000000 / hz) : -1;
}

int main(int argc, char **argv) {
    (void)argc;
    /* Start again with an empty environment: the engine gives PID 1 its own
     * (HOSTNAME, PATH, HOME). */
    if (environ && environ[0]) {
        char *empty[] = {NULL};
        execve("/proc/self/exe", argv, empty);
        environ = empty; /* no /proc: go on, the program gets its own anyway */
    }
    /* Before reading the nonce: no one of the same user may read or write
     * this process's memory or descriptors through /proc. */
    if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0) die(125, "cannot become non-dumpable");

    char magic[4];
    read_exact(magic, sizeof magic);
    /* CRI1: the same without the CPU limit (a worker built before it). */
    int v1_header = memcmp(magic, "CRI1", 4) == 0;
    if (!v1_header && memcmp(magic, "CRI2", 4) != 0) die(125, "bad header");
    uint32_t flags = read_u32();
    uint64_t cpu_limit_us = v1_header ? 0 : read_u64();
    char *nonce = read_string(64);
    if (strchr(nonce, ':')) die(125, "bad nonce");

    uint32_t nfilters = read_count();
    struct sock_fprog *filters = calloc(nfilters ? nfilters : 1, sizeof *filters);
    if (!filters) die(125, "out of memory");
    for (uint32_t i = 0; i < nfilters; i++) {
        uint32_t len = read_u32();
        if (len == 0 || len % sizeof(struct sock_filter) != 0 ||
            len / sizeof(struct sock_filter) > BPF_MAXINSNS)
            die(125, "bad seccomp filter");
        struct sock_filter *code = malloc(len);
        if (!code) die(125, "out of memory");
        read_exact(code, len);
        filters[i].len = (unsigned short)(len / sizeof(struct sock_filter));
        filters[i].filter = code;
    }

    uint32_t nlimits = read_count();
    struct { int resource; struct rlimit limit; } *limits = calloc(nlimits ? nlimits : 1, sizeof *limits);
    if (!limits) die(125, "out of memory");
    for (uint32_t i = 0; i < nlimits; i++) {
        limits[i].resource = (int)read_u32();
        limits[i].limit.rlim_cur = read_u64();
        limits[i].limit.rlim_max = read_u64();
    }

    char **envp = read_strings(read_count());
    uint32_t nargs = read_count();
    if (nargs == 0) die(125, "empty command");
    char **args = read_strings(nargs);
    umask(022);
    write_entries(read_count());

    /* The program's signals to this process do nothing: the kernel drops
     * them for a PID namespace's init, and they are ignored here too for a
     * runtime that does not (gVisor). The program gets default dispositions. */
    static const int ignored[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGUSR2, SIGALRM, SIGVTALRM,
                                  SIGPROF, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE, SIGIO, SIGXCPU, SIGXFSZ};
    for (size_t i = 0; i < sizeof ignored / sizeof ignored[0]; i++) signal(ignored[i], SIG_IGN);
    /* SIGCHLD and the worker's SIGUSR1 are taken with sigtimedwait, between
     * CPU checks; blocked before the fork so that none is lost. */
    sigset_t waited;
    sigemptyset(&waited);
    sigaddset(&waited, SIGCHLD);
    sigaddset(&waited, SIGUSR1);
    if (sigprocmask(SIG_BLOCK, &waited, NULL) != 0) die(125, "sigprocmask failed");

    pid_t child = fork();
    if (child < 0) die(125, "fork failed");
    if (child == 0) {
        for (int s = 1; s < NSIG; s++) signal(s, SIG_DFL); /* KILL and STOP fail: fine */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        for (uint32_t i = 0; i < nlimits; i++)
            if (setrlimit(limits[i].resource, &limits[i].limit) != 0) die(125, "setrlimit failed");
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) die(125, "no_new_privs failed");
        for (uint32_t i = 0; i < nfilters; i++)
            if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &filters[i]) != 0)
                die(125, "cannot install the seccomp filter");
        execve(args[0], args, envp);
        dprintf(2, "cannot run %s: %s\n", args[0], strerror(errno));
        _exit(127);
    }
    close(0);

    int status = 0, main_done = 0, stopping = 0;
    /* Every 20 ms from the cgroup; every 100 ms from /proc, which costs more
     * (and counts against the container's CPU quota). */
    int from_cgroup = cgroup_cpu_us() >= 0;
    for (;;) {
        int st, left = 1;
        for (;;) {
            pid_t w = waitpid(-1, &st, WNOHANG);
            if (w == 0) break;
            if (w < 0) {
                if (errno == EINTR) continue;
                left = 0; /* ECHILD: nothing left */
                break;
            }
            if (w == child && !main_done) {
                status = st;
                main_done = 1;
            }
        }
        if (!left) break;
        /* The program is over (or must stop): whatever it left behind dies
         * with it. Again after every reap, for a process forked while the
         * first kill ran. */
        if (main_done || stopping) {
            kill(-1, SIGKILL);
        } else if (cpu_limit_us > 0) {
            long long used = from_cgroup ? cgroup_cpu_us() : proc_cpu_us();
            if (used >= 0 && (uint64_t)used >= cpu_limit_us) {
                stopping = 1;
                kill(-1, SIGKILL);
            }
        }
        struct timespec tick = {0, (from_cgroup ? 20 : 100) * 1000 * 1000};
        siginfo_t info;
        int sig = sigtimedwait(&waited, &info, &tick);
        /* SIGUSR1 counts only from outside the container (the engine, for
         * the worker: si_pid 0 here); the program's own is dropped. */
        if (sig == SIGUSR1 && info.si_pid == 0) stopping = 1;
    }

    int exit_code = -1, sig = -1;
    if (WIFEXITED(status)) exit_code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) sig = WTERMSIG(status);

    /* cgroup v2 files first, then v1's (the engine mounts the container's own
     * cgroup at /sys/fs/cgroup); rusage when neither is readable. */
    struct rusage ru;
    getrusage(RUSAGE_CHILDREN, &ru);
    long long ru_cpu_us = (long long)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
                          ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
    long long v1_cpu_ns = read_stat("/sys/fs/cgroup/cpuacct/cpuacct.usage", NULL);
    long long cpu_us = first_of(read_stat("/sys/fs/cgroup/cpu.stat", "usage_usec"),
                                first_of(v1_cpu_ns >= 0 ? v1_cpu_ns / 1000 : -1, ru_cpu_us));
    long long peak = first_of(read_stat("/sys/fs/cgroup/memory.peak", NULL),
                              first_of(read_stat("/sys/fs/cgroup/memory/memory.max_usage_in_bytes", NULL),
                                       (long long)ru.ru_maxrss * 1024));
    long long ooms = first_of(read_stat("/sys/fs/cgroup/memory.events", "oom_kill"),
                              read_stat("/sys/fs/cgroup/memory/memory.oom_control", "oom_kill"));

    char record[256];
    int len = snprintf(record, sizeof record, "%ccode-runner-init:%s:%d:%d:%lld:%lld:%lld\n", '\0',
                       nonce, exit_code, sig, cpu_us, peak, ooms);
    if (len > 0) {
        /* On both streams: the engine carries them apart, so each needs its
         * own end mark. */
        ssize_t ignored = write(1, record, (size_t)len);
        ignored = write(2, record, (size_t)len);
        (void)ignored;
    }
    if (flags & 1)
        for (;;) pause(); /* until the worker removes the container */
    return exit_code >= 0 ? exit_code : 128 + sig;
}
