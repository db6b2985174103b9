/*
 * The email sink end to end: the real vigil binary mails a local SMTP
 * server (tests/support/smtp_receiver.c, no STARTTLS: `starttls: never`)
 * that records each transaction. Envelope, AUTH from secrets (an ${ENV}
 * user, a file: password), the subject line, multipart text + HTML, a
 * Message-ID from the notification id, and the resolved mail answering the
 * firing one (In-Reply-To). A grouped page is one mail. A 451 is retried
 * (the same Message-ID), a 550 dead-lettered, and `starttls: required`
 * refuses a server without STARTTLS before any mail is sent (`optional`
 * sends in plain text to it). `vigil check`
 * names mistyped keys of the three new sink types with file:line:col.
 */
#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "env.h"
#include "sinks_more_common.h"
#include "smtp_receiver.h"
#include "support.h"
#include "vigil/mem.h"

#define USER "smtp-user-alice"
#define PASS "hunter2-smtp-pass"

static struct vg_test_env E;
static struct vg_smtp_receiver *SMTP;
static char *RULES;
static char *SINKS;

static int start(const char *starttls, bool grouped)
{
    struct vg_test_env_opts o = {.http = true};
    char *url;
    char *pw;

    SMTP = vg_smtp_receiver_start();
    if (!SMTP) {
        return -1;
    }
    RULES = grouped ? sm_rules_grouped("mail") : sm_rules("mail");
    SINKS = vg_asprintf("  mail: {type: email, url: \"${VIGIL_TEST_SMTP_URL}\", "
                        "from: vigil@example.com, to: [oncall@example.com, second@example.com], "
                        "cc: [lead@example.com], username: \"${VIGIL_TEST_SMTP_USER}\", "
                        "password: \"file:smtp-password\", %s rate: 50/s, "
                        "console_url: \"https://vigil.example\"}\n",
                        starttls);
    o.rules = RULES;
    o.sinks = SINKS;
    if (vg_test_env_start(&E, "sinks-email", &o) != 0) {
        return -1;
    }
    url = vg_smtp_receiver_url(SMTP);
    setenv("VIGIL_TEST_SMTP_URL", url, 1);
    setenv("VIGIL_TEST_SMTP_USER", USER, 1);
    vg_free(url);
    pw = vg_asprintf("%s/smtp-password", E.dir);
    assert_true(vg_test_write_file(pw, PASS "\n", strlen(PASS) + 1));
    vg_free(pw);
    return 0;
}

static int setup(void **state)
{
    (void)state;
    return start("starttls: never,", false);
}

static int setup_grouped(void **state)
{
    (void)state;
    return start("starttls: never,", true);
}

static int setup_optional(void **state)
{
    (void)state;
    return start("starttls: optional,", false);
}

static int setup_strict(void **state)
{
    (void)state;
    return start("", false); /* starttls: required by default */
}

static int teardown(void **state)
{
    int rc;

    (void)state;
    rc = vg_test_env_stop(&E);
    vg_smtp_receiver_stop(SMTP);
    vg_free(RULES);
    vg_free(SINKS);
    return rc;
}

static char *header(const struct vg_smtp_message *m, const char *name)
{
    char *v = vg_smtp_message_header(m, name);

    if (!v) {
        fail_msg("no %s header in:\n%s", name, m->data ? m->data : "(no data)");
    }
    return v;
}

static void assert_header(const struct vg_smtp_message *m, const char *name, const char *want)
{
    char *v = header(m, name);

    assert_string_equal(v, want);
    vg_free(v);
}

static bool has_rcpt(const struct vg_smtp_message *m, const char *addr)
{
    for (size_t i = 0; i < m->n_rcpt; i++) {
        if (!strcmp(m->rcpt[i], addr)) {
            return true;
        }
    }
    return false;
}

static char *incident_id(void)
{
    char *out = NULL;
    cJSON *j;
    char *id;

    assert_int_equal(
        vg_test_env_cli(&E, &out, NULL, (const char *const[]){"incidents", "-o", "json", NULL}), 0);
    j = cJSON_Parse(out);
    free(out);
    id = vg_strdup(cJSON_GetObjectItem(cJSON_GetArrayItem(j, 0), "id")->valuestring);
    cJSON_Delete(j);
    return id;
}

static void test_firing_and_resolved_thread(void **state)
{
    struct vg_smtp_message *m;
    char *id;
    char *want;
    char *first_id;
    char *v;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "running", NULL,
                        NULL);
    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "failed", NULL,
                        NULL);
    assert_true(vg_smtp_receiver_wait(SMTP, 1, 60000));
    m = vg_smtp_receiver_message(SMTP, 0);
    assert_int_equal(m->status, 250);
    assert_string_equal(m->mail_from, "vigil@example.com");
    assert_int_equal(m->n_rcpt, 3);
    assert_true(has_rcpt(m, "oncall@example.com"));
    assert_true(has_rcpt(m, "second@example.com"));
    assert_true(has_rcpt(m, "lead@example.com"));
    assert_string_equal(m->auth_user, USER);
    assert_string_equal(m->auth_pass, PASS);
    assert_header(m, "Subject", "[HIGH] workflow ingestion-payments failed (public)");
    assert_header(m, "From", "vigil <vigil@example.com>");
    assert_header(m, "To", "oncall@example.com, second@example.com");
    assert_header(m, "Cc", "lead@example.com");
    assert_header(m, "MIME-Version", "1.0");
    id = incident_id();
    want = vg_asprintf("<%s-1.vigil@example.com>", id);
    assert_header(m, "Message-ID", want);
    first_id = want;
    assert_null(vg_smtp_message_header(m, "In-Reply-To"));
    v = header(m, "Content-Type");
    assert_non_null(strstr(v, "multipart/alternative; boundary="));
    vg_free(v);
    assert_non_null(strstr(m->data, "Content-Type: text/plain; charset=utf-8\r\n"));
    assert_non_null(strstr(m->data, "Content-Type: text/html; charset=utf-8\r\n"));
    assert_non_null(strstr(m->data, "Content-Transfer-Encoding: quoted-printable\r\n"));
    assert_non_null(strstr(m->data, "HIGH: workflow-failed\r\n"));
    assert_non_null(strstr(m->data, "ingestion-payments failed in public\r\n"));
    /* "running -> failed", the arrow quoted-printable */
    assert_non_null(strstr(m->data, "runtime: running =E2=86=92 failed"));
    assert_non_null(strstr(m->data, "https://vigil.example/resources/workflow:v1:ingestion-pay"));
    for (const char *p = m->data; (p = strstr(p, "\r\n")) != NULL; p += 2) {
        const char *next = strstr(p + 2, "\r\n");
        assert_true(!next || next - (p + 2) <= 998); /* RFC 5322 line limit */
    }
    vg_smtp_message_free(m);

    vg_test_env_produce(&E, "workflow", "ingestion-payments", "public", "active", "succeeded", NULL,
                        NULL);
    assert_true(vg_smtp_receiver_wait(SMTP, 2, 60000));
    m = vg_smtp_receiver_message(SMTP, 1);
    assert_int_equal(m->status, 250);
    assert_header(m, "Subject", "[RESOLVED] workflow ingestion-payments succeeded (public)");
    want = vg_asprintf("<%s-2.vigil@example.com>", id);
    assert_header(m, "Message-ID", want);
    vg_free(want);
    /* threads with the firing mail */
    assert_header(m, "In-Reply-To", first_id);
    assert_header(m, "References", first_id);
    assert_non_null(strstr(m->data, "RESOLVED: workflow-failed\r\n"));
    vg_smtp_message_free(m);
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_smtp_receiver_count(SMTP), 2);
    vg_free(first_id);
    vg_free(id);
    sm_assert_hidden(&E, USER);
    sm_assert_hidden(&E, PASS);
}

static void test_grouped_page_is_one_mail(void **state)
{
    struct vg_smtp_message *m;
    char *subject;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-a", "public", "active", "failed", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "wf-b", "public", "active", "failed", NULL, NULL);
    vg_test_env_produce(&E, "workflow", "wf-c", "public", "active", "failed", NULL, NULL);
    assert_true(vg_test_env_wait_applied(&E, 60000));
    assert_true(vg_smtp_receiver_wait(SMTP, 1, 60000));
    /* the group buffer is flushed and the outbox drained: nothing else is coming */
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_smtp_receiver_count(SMTP), 1);
    m = vg_smtp_receiver_message(SMTP, 0);
    assert_int_equal(m->status, 250);
    subject = header(m, "Subject");
    assert_string_equal(subject, "[HIGH] 3 incidents: oncall (workspace=public)");
    vg_free(subject);
    assert_non_null(strstr(m->data, "wf-a"));
    assert_non_null(strstr(m->data, "wf-b"));
    assert_non_null(strstr(m->data, "wf-c"));
    vg_free(header(m, "References"));
    vg_smtp_message_free(m);
}

static void test_retry_then_dead_letter(void **state)
{
    struct vg_smtp_behaviour later = {.data_status = 451};
    struct vg_smtp_behaviour refused = {.rcpt_status = 550};
    struct vg_smtp_message *a;
    struct vg_smtp_message *b;
    char *ida;
    char *idb;
    cJSON *dlq;
    cJSON *dead;

    (void)state;
    vg_smtp_receiver_push(SMTP, &later);
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-retried", "public", "active", "failed", NULL, NULL);
    assert_true(vg_smtp_receiver_wait(SMTP, 2, 60000));
    assert_true(vg_test_env_wait_quiet(&E, 30000));
    assert_int_equal(vg_smtp_receiver_count(SMTP), 2);
    a = vg_smtp_receiver_message(SMTP, 0);
    b = vg_smtp_receiver_message(SMTP, 1);
    assert_int_equal(a->status, 451);
    assert_int_equal(b->status, 250);
    ida = header(a, "Message-ID");
    idb = header(b, "Message-ID");
    assert_string_equal(ida, idb); /* the same message again: clients may drop the copy */
    vg_free(ida);
    vg_free(idb);
    vg_smtp_message_free(a);
    vg_smtp_message_free(b);

    vg_smtp_receiver_push(SMTP, &refused);
    vg_test_env_produce(&E, "workflow", "wf-refused", "public", "active", "failed", NULL, NULL);
    assert_true(sm_wait_dlq(&E, 1, 60000));
    assert_int_equal(vg_smtp_receiver_count(SMTP), 3);
    assert_int_equal(vg_smtp_receiver_delivered(SMTP), 1);
    dlq = sm_dlq(&E);
    assert_int_equal(cJSON_GetArraySize(dlq), 1);
    dead = cJSON_GetArrayItem(dlq, 0);
    assert_string_equal(cJSON_GetObjectItem(dead, "sink")->valuestring, "mail");
    assert_non_null(strstr(cJSON_GetObjectItem(dead, "reason")->valuestring, "SMTP 550"));
    assert_int_equal(cJSON_GetObjectItem(dead, "attempts")->valueint, 1);
    cJSON_Delete(dlq);
    sm_assert_hidden(&E, USER);
    sm_assert_hidden(&E, PASS);
}

static void test_starttls_required_refuses_plain_server(void **state)
{
    cJSON *dlq;
    const char *reason;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-plain", "public", "active", "failed", NULL, NULL);
    /* the dead letter proves vigil tried */
    assert_true(sm_wait_dlq(&E, 1, 60000));
    dlq = sm_dlq(&E);
    reason = cJSON_GetObjectItem(cJSON_GetArrayItem(dlq, 0), "reason")->valuestring;
    assert_non_null(strstr(reason, "STARTTLS"));
    cJSON_Delete(dlq);
    /* no transaction began: no MAIL FROM, no credentials, no message over plain text */
    assert_int_equal(vg_smtp_receiver_count(SMTP), 0);
    sm_assert_hidden(&E, PASS);
}

static void test_starttls_optional_sends_in_plain(void **state)
{
    struct vg_smtp_message *m;

    (void)state;
    assert_true(vg_test_env_spawn(&E));
    vg_test_env_produce(&E, "workflow", "wf-optional", "public", "active", "failed", NULL, NULL);
    assert_true(vg_smtp_receiver_wait(SMTP, 1, 60000));
    m = vg_smtp_receiver_message(SMTP, 0);
    assert_int_equal(m->status, 250);
    assert_string_equal(m->auth_user, USER);
    vg_smtp_message_free(m);
}

/* `vigil check` on a sinks section; returns its stderr (heap) and exit code in *rc. */
static char *check_sinks(const char *sinks, int *rc)
{
    char *out = NULL;
    char *err = NULL;

    E.opts.sinks = sinks;
    vg_test_env_write_config(&E);
    *rc = vg_test_env_cli(&E, &out, &err, (const char *const[]){"check", NULL});
    free(out);
    return err;
}

static void test_check_names_mistyped_keys(void **state)
{
    static const struct {
        const char *sinks;
        const char *want;
    } cases[] = {
        {"  teams: {type: teams, ulr: \"${VIGIL_TEST_SMTP_URL}\"}\n",
         "vigil.yaml:12:24: unknown key \"ulr\" (did you mean \"url\"?)"},
        {"  mail: {type: email, url: \"${VIGIL_TEST_SMTP_URL}\", from: a@example.com,\n"
         "         to: [b@example.com], startls: never}\n",
         "vigil.yaml:13:31: unknown key \"startls\" (did you mean \"starttls\"?)"},
        {"  mail: {type: email, url: \"${VIGIL_TEST_SMTP_URL}\", from: a@example.com,\n"
         "         to: [b@example.com], starttls: sometimes}\n",
         "vigil.yaml:13:41: sink mail: starttls must be required, optional or never"},
        {"  mail: {type: email, url: \"${VIGIL_TEST_SMTP_URL}\", from: a@example.com,\n"
         "         to: [b@example.com, nobody]}\n",
         "vigil.yaml:13:30: sink mail: to: \"nobody\" is not an address"},
        {"  mail: {type: email, url: \"https://mail.example.com\", from: a@example.com, to: "
         "[b@example.com]}\n",
         "sink mail: url must start with smtp:// or smtps://"},
        {"  pd: {type: pagerduty, routing_kye: \"${VIGIL_TEST_SMTP_USER}\"}\n",
         "vigil.yaml:12:25: unknown key \"routing_kye\" (did you mean \"routing_key\"?)"},
        {"  pd: {type: pagerduty, url: \"https://events.pagerduty.com/v2/enqueue\"}\n",
         "sink pd: pagerduty needs \"routing_key\""},
        {"  ops: {type: webhook, url: \"https://example.com/x\", to: [a@example.com]}\n",
         "sink ops: to applies to email sinks only"},
    };
    int failures = 0;

    (void)state;
    setenv("VIGIL_TEST_SMTP_URL", "smtp://127.0.0.1:25", 1);
    setenv("VIGIL_TEST_SMTP_USER", USER, 1);
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int rc = 0;
        char *err = check_sinks(cases[i].sinks, &rc);

        if (rc == 0 || !err || !strstr(err, cases[i].want) || strstr(err, USER)) {
            fprintf(stderr, "case %zu: exit %d, want \"%s\" in:\n%s\n", i, rc, cases[i].want,
                    err ? err : "(nothing)");
            failures++;
        }
        free(err);
    }
    /* and a valid config of all three passes */
    {
        int rc = 0;
        char *err = check_sinks(
            "  teams: {type: teams, url: \"https://example.webhook.office.com/x/" USER "\"}\n"
            "  mail: {type: email, url: \"smtp://mail.example.com:587\", from: vigil@example.com,\n"
            "         to: [oncall@example.com], cc: [], username: \"${VIGIL_TEST_SMTP_USER}\",\n"
            "         password: \"file:smtp-password\", starttls: required}\n"
            "  pd: {type: pagerduty, routing_key: \"${VIGIL_TEST_SMTP_USER}\"}\n",
            &rc);
        if (rc != 0) {
            fprintf(stderr, "the valid config failed: %s\n", err ? err : "");
            failures++;
        }
        free(err);
    }
    assert_int_equal(failures, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_firing_and_resolved_thread, setup, teardown),
        cmocka_unit_test_setup_teardown(test_grouped_page_is_one_mail, setup_grouped, teardown),
        cmocka_unit_test_setup_teardown(test_retry_then_dead_letter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_starttls_required_refuses_plain_server, setup_strict,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_starttls_optional_sends_in_plain, setup_optional,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_check_names_mistyped_keys, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
