/*
 * The kafka sink: each incident of a page is produced as v1
 * JSON (a grouped page becomes one single-form message per incident),
 * keyed by the incident id so one incident's notices stay in one
 * partition, in order. The producer is consumer/'s idempotent one
 * (acks=all). It runs on its own worker thread: a flush waits for the
 * brokers, and the dispatcher thread must never wait on Kafka.
 */
#include <cjson/cJSON.h>
#include <string.h>

#include "sinks_int.h"
#include "vigil/consumer.h"
#include "vigil/log.h"
#include "vigil/util.h"

struct kjob {
    uint64_t tag;
    char **keys;
    char **payloads;
    size_t n;
    int64_t t0;
};

struct sink_kafka {
    struct vg_sinks *sk;
    struct sink *s;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cond;
    bool stop;
    struct kjob *q;
    size_t n_q;
    size_t cap_q;
    struct vg_producer *p;
};

static void kjob_fini(struct kjob *j)
{
    for (size_t i = 0; i < j->n; i++) {
        vg_free(j->keys[i]);
        vg_free(j->payloads[i]);
    }
    vg_free(j->keys);
    vg_free(j->payloads);
}

static void finish(struct sink_kafka *k, const struct kjob *j, vg_err_t err, const char *why)
{
    struct vg_sink_result r;

    memset(&r, 0, sizeof(r));
    r.tag = j->tag;
    snprintf(r.sink, sizeof(r.sink), "%s", k->s->name);
    r.err = err;
    r.retry_after_ms = -1;
    r.latency_ms = vg_mono_ms() - j->t0;
    if (err != VG_OK) {
        snprintf(r.detail, sizeof(r.detail), "sink %s: %s", k->s->name, why);
        sinks_scrub(k->s, r.detail, sizeof(r.detail));
    }
    sinks_push_done(k->sk, &r);
}

static void run_batch(struct sink_kafka *k, struct kjob *jobs, size_t n)
{
    char errstr[512] = "";
    bool *sent = vg_calloc(n ? n : 1, sizeof(bool));
    vg_err_t err = VG_OK;

    if (!k->p) {
        const char *brokers = k->s->brokers ? k->s->brokers : k->sk->kafka_bootstraps;
        const struct vg_kv *props = k->s->brokers ? k->s->props : k->sk->kafka_props;
        size_t n_props = k->s->brokers ? k->s->n_props : k->sk->n_kafka_props;

        if (k->s->n_props > 0) {
            props = k->s->props;
            n_props = k->s->n_props;
        }
        if (!brokers) {
            snprintf(errstr, sizeof(errstr), "no kafka brokers");
            err = VG_ERR_BACKEND;
        } else {
            err = vg_producer_new(&k->p, brokers, props, n_props, errstr, sizeof(errstr));
            if (err == VG_ERR_INVALID) {
                err = VG_ERR_REJECTED; /* bad properties: retrying will not help */
            }
        }
    }
    for (size_t i = 0; err == VG_OK && i < n; i++) {
        vg_err_t e = VG_OK;
        for (size_t m = 0; e == VG_OK && m < jobs[i].n; m++) {
            e = vg_producer_send(k->p, k->s->topic, -1, jobs[i].keys[m], strlen(jobs[i].keys[m]),
                                 jobs[i].payloads[m], strlen(jobs[i].payloads[m]), errstr,
                                 sizeof(errstr));
        }
        sent[i] = e == VG_OK;
        if (e != VG_OK) {
            finish(k, &jobs[i], vg_err_is_retriable(e) ? e : VG_ERR_BACKEND, errstr);
        }
    }
    if (err == VG_OK) {
        err = vg_producer_flush(k->p, (int)k->s->timeout_ms, errstr, sizeof(errstr));
    }
    for (size_t i = 0; i < n; i++) {
        if (err != VG_OK || sent[i]) {
            finish(k, &jobs[i], err, errstr);
        }
        kjob_fini(&jobs[i]);
    }
    vg_free(sent);
}

static void *worker_main(void *arg)
{
    struct sink_kafka *k = arg;

    pthread_mutex_lock(&k->mu);
    for (;;) {
        struct kjob *batch;
        size_t n;

        while (!k->stop && k->n_q == 0) {
            pthread_cond_wait(&k->cond, &k->mu);
        }
        if (k->stop) {
            break;
        }
        batch = k->q;
        n = k->n_q;
        k->q = NULL;
        k->n_q = 0;
        k->cap_q = 0;
        pthread_mutex_unlock(&k->mu);
        run_batch(k, batch, n);
        vg_free(batch);
        pthread_mutex_lock(&k->mu);
    }
    pthread_mutex_unlock(&k->mu);
    return NULL;
}

/* A single-form v1 body for one incident of a (possibly grouped) page. */
static char *item_body(const struct sinks_notice *nt, const struct sinks_notice_item *it)
{
    cJSON *root = cJSON_CreateObject();
    char *s;

    cJSON_AddStringToObject(root, "version", "1");
    cJSON_AddStringToObject(root, "status", nt->status);
    cJSON_AddItemToObject(root, "incident", cJSON_Duplicate(it->incident, true));
    cJSON_AddItemToObject(root, "resource", cJSON_Duplicate(it->resource, true));
    cJSON_AddItemToObject(root, "transition", cJSON_Duplicate(it->transition, true));
    if (nt->group) {
        cJSON_AddItemToObject(root, "group", cJSON_Duplicate(nt->group, true));
    }
    s = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!s) {
        vg_oom("cJSON_PrintUnformatted");
    }
    return s;
}

vg_err_t sinks_kafka_start(struct vg_sinks *sk, struct sink *s, const struct vg_sink_job *job,
                           char *errstr, size_t errstr_size)
{
    struct sink_kafka *k = s->kafka;
    struct sinks_notice nt;
    struct kjob j;
    char why[128];

    if (sinks_notice_parse(&nt, job->body, job->body_len, why, sizeof(why)) != VG_OK) {
        snprintf(errstr, errstr_size, "sink %s: %s", s->name, why);
        return VG_ERR_INVALID;
    }
    memset(&j, 0, sizeof(j));
    j.tag = job->tag;
    j.t0 = vg_mono_ms();
    j.n = nt.n_items;
    j.keys = vg_calloc(j.n, sizeof(char *));
    j.payloads = vg_calloc(j.n, sizeof(char *));
    for (size_t i = 0; i < nt.n_items; i++) {
        j.keys[i] = vg_strdup(sinks_notice_str(nt.items[i].incident, "id"));
        j.payloads[i] =
            nt.grouped ? item_body(&nt, &nt.items[i]) : vg_strndup(job->body, job->body_len);
    }
    sinks_notice_fini(&nt);
    if (!k) {
        k = vg_calloc(1, sizeof(*k));
        k->sk = sk;
        k->s = s;
        pthread_mutex_init(&k->mu, NULL);
        pthread_cond_init(&k->cond, NULL);
        if (pthread_create(&k->thread, NULL, worker_main, k) != 0) {
            pthread_cond_destroy(&k->cond);
            pthread_mutex_destroy(&k->mu);
            vg_free(k);
            kjob_fini(&j);
            snprintf(errstr, errstr_size, "sink %s: cannot start the producer thread", s->name);
            return VG_ERR_INVALID;
        }
        s->kafka = k;
    }
    pthread_mutex_lock(&k->mu);
    *VG_ARRAY_PUSH(k->q, k->n_q, k->cap_q) = j;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    return VG_OK;
}

void sinks_kafka_destroy(struct sink_kafka *k)
{
    if (!k) {
        return;
    }
    pthread_mutex_lock(&k->mu);
    k->stop = true;
    pthread_cond_signal(&k->cond);
    pthread_mutex_unlock(&k->mu);
    pthread_join(k->thread, NULL);
    for (size_t i = 0; i < k->n_q; i++) {
        kjob_fini(&k->q[i]);
    }
    vg_free(k->q);
    if (k->p) {
        char errstr[128];
        vg_producer_flush(k->p, 2000, errstr, sizeof(errstr));
        vg_producer_destroy(k->p);
    }
    pthread_cond_destroy(&k->cond);
    pthread_mutex_destroy(&k->mu);
    vg_free(k);
}
