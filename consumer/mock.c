/*
 * The embedded Kafka: librdkafka's in-process mock cluster on 127.0.0.1,
 * owned by an otherwise idle producer handle. Used by `vigil` when no
 * brokers are configured, and by the integration tests. The mock broker
 * keeps only ~5 MiB / 100k batches per partition and drops older data.
 * Also here: the fork guard that keeps the mock's sockets out of child
 * processes, which makes taking a broker down safe (see fork_prepare).
 */
#include <dirent.h>
#include <errno.h>
#include <librdkafka/rdkafka.h> /* before rdkafka_mock.h, which needs it */
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "consumer_int.h"
#include "vigil/consumer.h"
#include "vigil/mem.h"

/* The protocol's ApiKeys: rdkafka_mock.h takes raw keys. */
#define KAFKA_API_PRODUCE 0
#define KAFKA_API_FETCH 1
#define KAFKA_API_OFFSET_COMMIT 8
#define KAFKA_API_JOIN_GROUP 11

/* A topic created through vg_mock_kafka_create_topic: its leaders are known. */
struct mock_topic {
    char *name;
    int partitions;
};

struct vg_mock_kafka {
    rd_kafka_t *rk;
    rd_kafka_mock_cluster_t *mc;
    char *bootstraps;
    int brokers;
    uint16_t *ports; /* ports[i]: broker i + 1 listens on 127.0.0.1:ports[i] */
    bool *down;      /* down[i]: broker i + 1 is down */
    struct mock_topic *topics;
    size_t n_topics;
    struct vg_mock_kafka *next; /* in live_clusters */
};

/*
 * The fork guard. rd_kafka_mock_broker_set_down (librdkafka 2.0.2) closes
 * the broker's listening socket and at once binds a new one to the same
 * port, and asserts (aborting the process) if that bind fails. It fails
 * with EADDRINUSE whenever another process still holds a copy of the old
 * listening socket: a child forked by this process between its fork() and
 * its exec() (the socket is close-on-exec, so only that window), however
 * short, keeps the socket listening. The chaos suite forks vigil instances
 * and redis-server all the time, so a broker taken down just after a fork
 * aborted the suite. The accepted connections are not close-on-exec at all:
 * every child started later kept copies of them, so "broker down" did not
 * even close those connections.
 *
 * So while a mock cluster lives, every fork() (pthread_atfork) closes the
 * mock's sockets in the child before the parent goes on, and taking a
 * broker down or up excludes forks: no child can hold a listening socket
 * when the mock re-binds its port. Children started with posix_spawn,
 * vfork or clone skip pthread_atfork and are not covered (vigil and its
 * tests start children with fork).
 */
static pthread_mutex_t mock_mu = PTHREAD_MUTEX_INITIALIZER; /* all of the below, and mk's fields */
static pthread_once_t fork_guard_once = PTHREAD_ONCE_INIT;
static struct vg_mock_kafka *live_clusters;
/* Filled by fork_prepare for fork_child, which may only make async-signal-safe calls. */
static int *fork_fds;
static size_t n_fork_fds;
static size_t cap_fork_fds;
static uint16_t *fork_ports;
static size_t n_fork_ports;
static size_t cap_fork_ports;
static int fork_pipe[2] = {-1, -1};

static bool is_mock_socket(int fd)
{
    struct sockaddr_in sin;
    socklen_t len = sizeof(sin);

    if (getsockname(fd, (struct sockaddr *)&sin, &len) != 0 || len < sizeof(sin) ||
        sin.sin_family != AF_INET || sin.sin_addr.s_addr != htonl(INADDR_LOOPBACK)) {
        return false;
    }
    for (size_t i = 0; i < n_fork_ports; i++) {
        if (ntohs(sin.sin_port) == fork_ports[i]) {
            return true;
        }
    }
    return false;
}

/* The three handlers keep errno: fork()'s caller reads it when fork fails. */
static void fork_prepare(void)
{
    int saved_errno = errno;
    DIR *dir;
    struct dirent *de;

    pthread_mutex_lock(&mock_mu);
    n_fork_fds = 0;
    n_fork_ports = 0;
    if (!live_clusters) {
        errno = saved_errno;
        return;
    }
    for (struct vg_mock_kafka *mk = live_clusters; mk; mk = mk->next) {
        for (int i = 0; i < mk->brokers; i++) {
            if (n_fork_ports == cap_fork_ports) {
                cap_fork_ports = cap_fork_ports ? 2 * cap_fork_ports : 16;
                fork_ports = vg_realloc(fork_ports, cap_fork_ports * sizeof(*fork_ports));
            }
            fork_ports[n_fork_ports++] = mk->ports[i];
        }
    }
    /* The listeners and accepted connections: this process's sockets on the brokers' ports. */
    dir = opendir("/proc/self/fd");
    if (dir) {
        while ((de = readdir(dir)) != NULL) {
            char *end;
            long fd;

            errno = 0;
            fd = strtol(de->d_name, &end, 10);
            if (errno || end == de->d_name || *end || fd < 0 || fd > INT_MAX || fd == dirfd(dir) ||
                !is_mock_socket((int)fd)) {
                continue;
            }
            if (n_fork_fds == cap_fork_fds) {
                cap_fork_fds = cap_fork_fds ? 2 * cap_fork_fds : 64;
                fork_fds = vg_realloc(fork_fds, cap_fork_fds * sizeof(*fork_fds));
            }
            fork_fds[n_fork_fds++] = (int)fd;
        }
        closedir(dir);
    }
    /* The parent waits for the child's end of this pipe to close (fork_parent). */
    if (pipe(fork_pipe) != 0) {
        fork_pipe[0] = -1;
        fork_pipe[1] = -1;
    }
    errno = saved_errno;
}

static void fork_parent(void)
{
    int saved_errno = errno;
    char c;

    if (fork_pipe[0] >= 0) {
        close(fork_pipe[1]);
        /* EOF once the child closed its copy (or died, or fork failed) */
        while (read(fork_pipe[0], &c, 1) < 0 && errno == EINTR) {
        }
        close(fork_pipe[0]);
        fork_pipe[0] = -1;
        fork_pipe[1] = -1;
    }
    pthread_mutex_unlock(&mock_mu);
    errno = saved_errno;
}

static void fork_child(void)
{
    int saved_errno = errno;

    for (size_t i = 0; i < n_fork_fds; i++) {
        /* checked again: the fd may have been closed and reused since fork_prepare */
        if (is_mock_socket(fork_fds[i])) {
            close(fork_fds[i]);
        }
    }
    if (fork_pipe[0] >= 0) {
        close(fork_pipe[0]);
        close(fork_pipe[1]);
        fork_pipe[0] = -1;
        fork_pipe[1] = -1;
    }
    pthread_mutex_unlock(&mock_mu);
    errno = saved_errno;
}

static void fork_guard_install(void)
{
    if (pthread_atfork(fork_prepare, fork_parent, fork_child) != 0) {
        vg_oom("pthread_atfork");
    }
}

/* "127.0.0.1:p1,127.0.0.1:p2,..." -> ports (broker i + 1 is the i-th entry). */
static bool parse_ports(const char *bootstraps, uint16_t *ports, int n)
{
    const char *p = bootstraps;

    for (int i = 0; i < n; i++) {
        const char *colon = strchr(p, ':');
        char *end;
        long port;

        if (!colon) {
            return false;
        }
        errno = 0;
        port = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || port < 1 || port > 65535 ||
            (*end != ',' && *end != '\0')) {
            return false;
        }
        ports[i] = (uint16_t)port;
        p = end + (*end == ',');
    }
    return true;
}

vg_err_t vg_mock_kafka_start(struct vg_mock_kafka **out, int brokers, char *errstr,
                             size_t errstr_size)
{
    struct vg_mock_kafka *mk;
    rd_kafka_conf_t *conf;
    char msg[512];
    bool ports_ok;

    *out = NULL;
    if (brokers < 1) {
        snprintf(errstr, errstr_size, "mock kafka: %d brokers", brokers);
        return VG_ERR_INVALID;
    }
    conf = consumer_conf_new(NULL, errstr, errstr_size);
    /* The owner never connects anywhere: hide its "no bootstrap.servers" notice. */
    if (!conf ||
        consumer_conf_set(conf, "mock kafka: ", "log_level", "4", errstr, errstr_size) != VG_OK) {
        if (conf) {
            rd_kafka_conf_destroy(conf);
        }
        return VG_ERR_INVALID;
    }
    mk = vg_calloc(1, sizeof(*mk));
    mk->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, msg, sizeof(msg));
    if (!mk->rk) {
        rd_kafka_conf_destroy(conf);
        snprintf(errstr, errstr_size, "mock kafka: %s", msg);
        vg_free(mk);
        return VG_ERR_INVALID;
    }
    pthread_once(&fork_guard_once, fork_guard_install);
    /* no fork while the listeners are created and not yet known to the fork guard */
    pthread_mutex_lock(&mock_mu);
    mk->mc = rd_kafka_mock_cluster_new(mk->rk, brokers);
    if (!mk->mc) {
        pthread_mutex_unlock(&mock_mu);
        snprintf(errstr, errstr_size, "mock kafka: cannot start %d brokers on 127.0.0.1", brokers);
        rd_kafka_destroy(mk->rk);
        vg_free(mk);
        return VG_ERR_IO;
    }
    mk->bootstraps = vg_strdup(rd_kafka_mock_cluster_bootstraps(mk->mc));
    mk->brokers = brokers;
    mk->ports = vg_calloc((size_t)brokers, sizeof(*mk->ports));
    mk->down = vg_calloc((size_t)brokers, sizeof(*mk->down));
    /* the mock numbers its brokers 1..n and lists them in that order */
    ports_ok = parse_ports(mk->bootstraps, mk->ports, brokers);
    VG_ASSERT(ports_ok);
    mk->next = live_clusters;
    live_clusters = mk;
    pthread_mutex_unlock(&mock_mu);
    *out = mk;
    return VG_OK;
}

/*
 * The leader for a partition whose home broker is `home`: home itself when
 * it is up, else the next broker that is up (a replica taking over), or -1
 * (no leader, as a real cluster with every replica down) if none is.
 */
static int32_t leader_for(const struct vg_mock_kafka *mk, int32_t home)
{
    for (int i = 0; i < mk->brokers; i++) {
        int32_t b = 1 + (home - 1 + i) % mk->brokers;

        if (!mk->down[b - 1]) {
            return b;
        }
    }
    return -1;
}

vg_err_t vg_mock_kafka_create_topic(struct vg_mock_kafka *mk, const char *topic, int partitions,
                                    char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rerr;

    if (partitions < 1) {
        snprintf(errstr, errstr_size, "mock kafka: topic %s: %d partitions", topic, partitions);
        return VG_ERR_INVALID;
    }
    pthread_mutex_lock(&mock_mu);
    rerr = rd_kafka_mock_topic_create(mk->mc, topic, partitions, 1);
    if (rerr) {
        pthread_mutex_unlock(&mock_mu);
        snprintf(errstr, errstr_size, "mock kafka: topic %s: %s", topic, rd_kafka_err2str(rerr));
        return VG_ERR_INVALID;
    }
    /*
     * The mock picks each partition's leader at random; spread them over
     * the brokers in turn instead (partition p on broker 1 + p % brokers),
     * so that taking a broker down knows which leaders to move.
     */
    for (int p = 0; p < partitions; p++) {
        int32_t home = 1 + p % mk->brokers;

        rd_kafka_mock_partition_set_leader(mk->mc, topic, p, leader_for(mk, home));
    }
    mk->topics = vg_realloc(mk->topics, (mk->n_topics + 1) * sizeof(*mk->topics));
    mk->topics[mk->n_topics].name = vg_strdup(topic);
    mk->topics[mk->n_topics].partitions = partitions;
    mk->n_topics++;
    pthread_mutex_unlock(&mock_mu);
    return VG_OK;
}

const char *vg_mock_kafka_bootstraps(const struct vg_mock_kafka *mk)
{
    return mk->bootstraps;
}

void vg_mock_kafka_fail_produce(struct vg_mock_kafka *mk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        /*
         * Not retriable, not one that makes the idempotent producer fatal,
         * and not about the message itself (a size refusal is handled
         * differently by the dead-letter path).
         */
        rd_kafka_mock_push_request_errors(mk->mc, KAFKA_API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED);
    }
}

void vg_mock_kafka_refuse_size(struct vg_mock_kafka *mk, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        rd_kafka_mock_push_request_errors(mk->mc, KAFKA_API_PRODUCE, 1,
                                          RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE);
    }
}

void vg_mock_kafka_stop(struct vg_mock_kafka *mk)
{
    if (!mk) {
        return;
    }
    pthread_mutex_lock(&mock_mu);
    for (struct vg_mock_kafka **pp = &live_clusters; *pp; pp = &(*pp)->next) {
        if (*pp == mk) {
            *pp = mk->next;
            break;
        }
    }
    pthread_mutex_unlock(&mock_mu);
    rd_kafka_mock_cluster_destroy(mk->mc);
    rd_kafka_destroy(mk->rk);
    for (size_t i = 0; i < mk->n_topics; i++) {
        vg_free(mk->topics[i].name);
    }
    vg_free(mk->topics);
    vg_free(mk->down);
    vg_free(mk->ports);
    vg_free(mk->bootstraps);
    vg_free(mk);
}

void vg_mock_kafka_fail_requests(struct vg_mock_kafka *mk, enum vg_mock_kafka_request req, size_t n)
{
    int16_t api = KAFKA_API_FETCH;
    rd_kafka_resp_err_t rerr = RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION;

    /*
     * Errors a real broker answers while it moves leaders or coordinators, or
     * lacks in-sync replicas: all retriable.
     */
    switch (req) {
    case VG_MOCK_KAFKA_FETCH:
        break;
    case VG_MOCK_KAFKA_OFFSET_COMMIT:
        api = KAFKA_API_OFFSET_COMMIT;
        rerr = RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE;
        break;
    case VG_MOCK_KAFKA_JOIN_GROUP:
        api = KAFKA_API_JOIN_GROUP;
        rerr = RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS;
        break;
    case VG_MOCK_KAFKA_PRODUCE:
        api = KAFKA_API_PRODUCE;
        rerr = RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS;
        break;
    }
    for (size_t i = 0; i < n; i++) {
        rd_kafka_mock_push_request_errors(mk->mc, api, 1, rerr);
    }
}

void vg_mock_kafka_broker_set_down(struct vg_mock_kafka *mk, int32_t broker_id, bool down)
{
    VG_ASSERT(broker_id >= 1 && broker_id <= mk->brokers);
    /* under mock_mu: no child can hold the listener the mock re-binds (the fork guard above) */
    pthread_mutex_lock(&mock_mu);
    if (mk->down[broker_id - 1] == down) {
        pthread_mutex_unlock(&mock_mu);
        return;
    }
    mk->down[broker_id - 1] = down;
    if (down) {
        rd_kafka_mock_broker_set_down(mk->mc, broker_id);
    } else {
        rd_kafka_mock_broker_set_up(mk->mc, broker_id);
    }
    /*
     * Leaders move as in a cluster with replicas: away from a broker that
     * went down (clients get NOT_LEADER or lose the connection, refresh
     * their metadata and follow), back to it once it is up (the preferred
     * leader). The mock keeps one log per partition, so every broker
     * serves the same data. Topics the mock created by itself are not
     * known here: their partitions on a down broker wait for it.
     */
    for (size_t t = 0; t < mk->n_topics; t++) {
        for (int p = 0; p < mk->topics[t].partitions; p++) {
            int32_t home = 1 + p % mk->brokers;

            if (home == broker_id || leader_for(mk, home) != home) {
                rd_kafka_mock_partition_set_leader(mk->mc, mk->topics[t].name, p,
                                                   leader_for(mk, home));
            }
        }
    }
    pthread_mutex_unlock(&mock_mu);
}

vg_err_t vg_mock_kafka_move_coordinator(struct vg_mock_kafka *mk, const char *group,
                                        int32_t broker_id, char *errstr, size_t errstr_size)
{
    rd_kafka_resp_err_t rerr = rd_kafka_mock_coordinator_set(mk->mc, "group", group, broker_id);

    if (rerr) {
        snprintf(errstr, errstr_size, "mock kafka: coordinator of %s to broker %d: %s", group,
                 (int)broker_id, rd_kafka_err2str(rerr));
        return VG_ERR_INVALID;
    }
    return VG_OK;
}
