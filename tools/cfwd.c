/* tb-cfwd: the reference the uring-* variants are measured against, a two-thread blocking
 * TUN forwarder in C. One thread per direction: read(2) one packet, write(2) it to the other
 * device, repeat. No vnet header, no batching, no Python.
 *
 *   tb-cfwd IFACE1 IFACE2 [STATS]
 *
 * Creates both TUN devices (IFF_TUN | IFF_NO_PI). On SIGINT or SIGTERM it writes its
 * counters as JSON to STATS (when given; the harness's {stats} placeholder) and exits 0. A
 * failed write is a counted drop (EINVAL: malformed, EIO: device down); EBADFD and friends
 * mean the device is gone and end the program with status 1.
 */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

typedef struct {
    const char *name;
    int src, dst;
    /* written by its thread, read by the main thread when it writes the stats */
    uint64_t packets, bytes, drops, read_errors;
} dir_t;

static int open_tun(const char *name)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    struct ifreq ifr;
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int gone(int err) { return err == EBADFD || err == EBADF || err == ENODEV || err == ENXIO; }

static void add(uint64_t *counter, uint64_t n) { __atomic_fetch_add(counter, n, __ATOMIC_RELAXED); }

static void *pump(void *arg)
{
    dir_t *d = arg;
    static __thread unsigned char buf[65536];
    for (;;) {
        ssize_t n = read(d->src, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (gone(errno))
                break;
            add(&d->read_errors, 1);
            continue;
        }
        if (write(d->dst, buf, (size_t)n) < 0) {
            if (gone(errno))
                break;
            add(&d->drops, 1);
            continue;
        }
        add(&d->packets, 1);
        add(&d->bytes, (uint64_t)n);
    }
    fprintf(stderr, "tb-cfwd: %s: device gone: %s\n", d->name, strerror(errno));
    exit(1);
}

static uint64_t get(const uint64_t *counter) { return __atomic_load_n(counter, __ATOMIC_RELAXED); }

static int write_stats(const char *path, dir_t *dirs)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL)
        return -1;
    fprintf(f, "{\"variant\": \"tb-cfwd\", \"pid\": %d, \"directions\": {", (int)getpid());
    for (int i = 0; i < 2; i++)
        fprintf(f,
                "%s\"%s\": {\"packets\": %llu, \"bytes\": %llu, \"drops\": %llu, "
                "\"read_errors\": %llu, \"frames_read\": %llu, \"bytes_read\": %llu}",
                i ? ", " : "", dirs[i].name, (unsigned long long)get(&dirs[i].packets),
                (unsigned long long)get(&dirs[i].bytes), (unsigned long long)get(&dirs[i].drops),
                (unsigned long long)get(&dirs[i].read_errors),
                (unsigned long long)(get(&dirs[i].packets) + get(&dirs[i].drops)),
                (unsigned long long)get(&dirs[i].bytes));
    fprintf(f, "}, \"extra\": {\"threads_per_direction\": 1}}\n");
    if (fclose(f) != 0)
        return -1;
    return rename(tmp, path);
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: %s IFACE1 IFACE2 [STATS]\n", argv[0]);
        return 2;
    }
    int fd1 = open_tun(argv[1]), fd2 = fd1 < 0 ? -1 : open_tun(argv[2]);
    if (fd1 < 0 || fd2 < 0) {
        fprintf(stderr, "tb-cfwd: cannot create the TUN devices: %s\n", strerror(errno));
        return 1;
    }
    /* Block the stop signals in every thread; the main thread takes them with sigwait. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    static dir_t dirs[2];
    dirs[0] = (dir_t){.name = "1to2", .src = fd1, .dst = fd2};
    dirs[1] = (dir_t){.name = "2to1", .src = fd2, .dst = fd1};
    for (int i = 0; i < 2; i++) {
        pthread_t t;
        if (pthread_create(&t, NULL, pump, &dirs[i]) != 0) {
            fprintf(stderr, "tb-cfwd: cannot start a thread\n");
            return 1;
        }
        pthread_setname_np(t, dirs[i].name);
    }
    int sig;
    sigwait(&stop, &sig);
    if (argc == 4 && argv[3][0] && write_stats(argv[3], dirs) < 0) {
        fprintf(stderr, "tb-cfwd: cannot write %s: %s\n", argv[3], strerror(errno));
        return 1;
    }
    return 0;
}
