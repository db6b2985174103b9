/*
 * A real SMTP server on 127.0.0.1:<ephemeral port> for tests, in the
 * style of http_receiver.h: it speaks ESMTP (EHLO, AUTH PLAIN and LOGIN,
 * MAIL, RCPT, DATA, RSET, NOOP, QUIT), never offers STARTTLS, records
 * every mail transaction (envelope, credentials, the message with dot
 * stuffing undone) and answers by a script: per transaction, a reply code
 * for RCPT and one for the end of DATA (default 250).
 * Written in C rather than driving Python's aiosmtpd: in process like the
 * HTTP receiver, scripted per transaction without a second process to
 * synchronise with, and no runtime besides the test binary.
 */
#ifndef VIGIL_TEST_SMTP_RECEIVER_H
#define VIGIL_TEST_SMTP_RECEIVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vg_smtp_message {
    char *helo; /* the EHLO/HELO argument */
    char *mail_from;
    char **rcpt; /* addresses as sent, without <> */
    size_t n_rcpt;
    char *auth_user; /* NULL: no AUTH on this connection */
    char *auth_pass;
    char *data; /* the message, CRLF lines, NUL-terminated; NULL when refused before DATA */
    size_t data_len;
    int status; /* the reply that ended the transaction (250, 451, 550...) */
    int64_t at_mono_ms;
};

/* What to answer in one transaction; 0 means 250. */
struct vg_smtp_behaviour {
    int rcpt_status; /* answer the first RCPT with this (and record the transaction) */
    int data_status; /* answer the end of DATA with this */
};

struct vg_smtp_receiver;

struct vg_smtp_receiver *vg_smtp_receiver_start(void);
void vg_smtp_receiver_stop(struct vg_smtp_receiver *r);
int vg_smtp_receiver_port(const struct vg_smtp_receiver *r);
/* "smtp://127.0.0.1:<port>" into a new heap string. */
char *vg_smtp_receiver_url(const struct vg_smtp_receiver *r);
/* Queue a behaviour for the next transaction (MAIL FROM), in order. */
void vg_smtp_receiver_push(struct vg_smtp_receiver *r, const struct vg_smtp_behaviour *b);
/* Transactions recorded so far (accepted or refused). */
size_t vg_smtp_receiver_count(struct vg_smtp_receiver *r);
/* Transactions answered 250 at the end of DATA. */
size_t vg_smtp_receiver_delivered(struct vg_smtp_receiver *r);
/* A deep copy of transaction i (vg_smtp_message_free), NULL when out of range. */
struct vg_smtp_message *vg_smtp_receiver_message(struct vg_smtp_receiver *r, size_t i);
void vg_smtp_message_free(struct vg_smtp_message *m);
/* The value of header `name` (case-insensitive, unfolded) in m->data, heap; NULL if absent. */
char *vg_smtp_message_header(const struct vg_smtp_message *m, const char *name);
/* Wait until at least n transactions are recorded (vg_test_timeout-scaled). */
bool vg_smtp_receiver_wait(struct vg_smtp_receiver *r, size_t n, int timeout_ms);

#endif
