/*  hcp_client — see hcp_client.h.

    Internals: every submission is an entry, found by id in a hash and kept
    on exactly one of three lists: queued (encoded, not yet sent: the window
    is full, or no ingest is connected), in_flight (sent, waiting for an
    answer; in send order, so the head times out first) and backoff (timed
    out, waiting to be resent). Results wait in a small FIFO until
    hcp_client_wait hands them out.

    The DEALER socket has ZMQ_IMMEDIATE set: messages go only to ingest
    endpoints that are connected, so with several endpoints a dead one does
    not swallow submissions. While none is connected, sends are refused
    (EAGAIN); the queued entries then count as attempts that time out like
    lost ones, so a submission never waits forever.
*/
#include "hcp_client.h"

#include <ctype.h>
#include <czmq.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

enum { S_NONE, S_QUEUED, S_IN_FLIGHT, S_BACKOFF };

typedef struct _s_entry_t s_entry_t;
struct _s_entry_t {
    s_entry_t *prev, *next;
    int list;
    char id[72];
    uint8_t *data;
    size_t size;
    void *tag;
    int attempts;
    int64_t first_sent_us; //  0 until first sent
    int64_t due_us;        //  in_flight: answer deadline; backoff: resend time;
                           //  queued: attempt deadline while no ingest is connected (0 = none)
};

typedef struct {
    s_entry_t *head, *tail;
    size_t count;
} s_list_t;

struct _hcp_client_t {
    void *socket;
    hcp_client_options_t options;
    zhashx_t *entries; //  id → s_entry_t (not owned by the hash)
    s_list_t queued, in_flight, backoff;
    bool stalled; //  the last send found no connected ingest
    hcp_client_result_t *results;
    size_t results_count, results_capacity;
    char endpoints[256];
};

//  One ZeroMQ context per process, made on first use and kept: it owns the
//  I/O thread every client shares.
static void *s_context;
static pthread_once_t s_context_once = PTHREAD_ONCE_INIT;

static void
s_context_create (void)
{
    s_context = zmq_ctx_new ();
}

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  --------------------------------------------------------------------------
//  Lists

static void
s_unlink (hcp_client_t *self, s_entry_t *entry)
{
    s_list_t *list = entry->list == S_QUEUED      ? &self->queued
                     : entry->list == S_IN_FLIGHT ? &self->in_flight
                     : entry->list == S_BACKOFF   ? &self->backoff
                                                  : NULL;
    if (!list)
        return;
    if (entry->prev)
        entry->prev->next = entry->next;
    else
        list->head = entry->next;
    if (entry->next)
        entry->next->prev = entry->prev;
    else
        list->tail = entry->prev;
    list->count--;
    entry->prev = entry->next = NULL;
    entry->list = S_NONE;
}

static void
s_append (hcp_client_t *self, s_entry_t *entry, int which, bool at_front)
{
    s_unlink (self, entry);
    s_list_t *list = which == S_QUEUED      ? &self->queued
                     : which == S_IN_FLIGHT ? &self->in_flight
                                            : &self->backoff;
    if (at_front) {
        entry->next = list->head;
        if (list->head)
            list->head->prev = entry;
        else
            list->tail = entry;
        list->head = entry;
    }
    else {
        entry->prev = list->tail;
        if (list->tail)
            list->tail->next = entry;
        else
            list->head = entry;
        list->tail = entry;
    }
    list->count++;
    entry->list = which;
}

//  --------------------------------------------------------------------------
//  Results

static hcp_client_result_t *
s_result_new (hcp_client_t *self)
{
    if (self->results_count == self->results_capacity) {
        self->results_capacity = self->results_capacity ? self->results_capacity * 2 : 64;
        self->results = realloc (self->results,
                                 self->results_capacity * sizeof *self->results);
        if (!self->results)
            abort ();
    }
    hcp_client_result_t *result = &self->results[self->results_count++];
    memset (result, 0, sizeof *result);
    return result;
}

//  Removes the entry and turns it into a result.
static hcp_client_result_t *
s_finish (hcp_client_t *self, s_entry_t *entry, hcp_client_status_t status)
{
    hcp_client_result_t *result = s_result_new (self);
    snprintf (result->id, sizeof result->id, "%s", entry->id);
    result->status = status;
    result->tag = entry->tag;
    result->attempts = entry->attempts;
    result->latency_us = entry->first_sent_us ? s_now_us () - entry->first_sent_us : 0;
    s_unlink (self, entry);
    zhashx_delete (self->entries, entry->id);
    free (entry->data);
    free (entry);
    return result;
}

//  Takes the result at index out of the FIFO into *out.
static void
s_result_take (hcp_client_t *self, size_t index, hcp_client_result_t *out)
{
    *out = self->results[index];
    memmove (&self->results[index], &self->results[index + 1],
             (self->results_count - index - 1) * sizeof *self->results);
    self->results_count--;
}

//  --------------------------------------------------------------------------
//  Sending and resending

static int64_t
s_backoff_us (hcp_client_t *self, int attempts)
{
    int64_t delay = self->options.backoff_ms;
    for (int i = 1; i < attempts && delay < self->options.backoff_max_ms; i++)
        delay *= 2;
    if (delay > self->options.backoff_max_ms)
        delay = self->options.backoff_max_ms;
    //  Jitter: between half and all of the delay, so that adapters cut off
    //  together do not come back together.
    unsigned int random = 0;
    if (getrandom (&random, sizeof random, GRND_NONBLOCK) != sizeof random)
        random = (unsigned int) s_now_us ();
    delay = delay / 2 + (int64_t) (random % (unsigned int) (delay / 2 + 1));
    return delay * 1000;
}

//  An attempt ended without an answer: wait and resend, or give up.
static void
s_attempt_failed (hcp_client_t *self, s_entry_t *entry, int64_t now)
{
    if (entry->attempts >= self->options.max_attempts) {
        hcp_client_result_t *result = s_finish (self, entry, HCP_CLIENT_FAILED);
        snprintf (result->code, sizeof result->code, "no_answer");
        snprintf (
            result->reason, sizeof result->reason,
            "no answer from ingest (%.120s) after %d attempts of %d ms: keep it and send "
            "it again later with the same id",
            self->endpoints, result->attempts, self->options.timeout_ms);
        return;
    }
    entry->due_us = now + s_backoff_us (self, entry->attempts);
    s_append (self, entry, S_BACKOFF, false);
}

//  Sends queued entries while the window has room.
static void
s_pump (hcp_client_t *self, int64_t now)
{
    //  Resends whose pause is over go first.
    for (s_entry_t *entry = self->backoff.head, *next; entry; entry = next) {
        next = entry->next;
        if (entry->due_us <= now) {
            entry->due_us = 0;
            s_append (self, entry, S_QUEUED, true);
        }
    }
    while (self->queued.head && self->in_flight.count < (size_t) self->options.max_in_flight) {
        s_entry_t *entry = self->queued.head;
        if (zmq_send (self->socket, entry->data, entry->size, ZMQ_DONTWAIT) < 0) {
            //  No ingest connected (or its queue is full): every queued
            //  entry starts an attempt that times out unless sending
            //  becomes possible.
            self->stalled = true;
            for (s_entry_t *e = self->queued.head; e; e = e->next)
                if (e->due_us == 0) {
                    e->due_us = now + (int64_t) self->options.timeout_ms * 1000;
                    e->attempts++;
                    if (!e->first_sent_us)
                        e->first_sent_us = now;
                }
            return;
        }
        if (self->stalled) {
            self->stalled = false;
            //  The attempt counted while stalled is the one now sent.
            for (s_entry_t *e = self->queued.head; e; e = e->next)
                if (e->due_us) {
                    e->due_us = 0;
                    e->attempts--;
                }
        }
        entry->attempts++;
        if (!entry->first_sent_us)
            entry->first_sent_us = now;
        entry->due_us = now + (int64_t) self->options.timeout_ms * 1000;
        s_append (self, entry, S_IN_FLIGHT, false);
    }
}

//  Moves entries whose attempt ran out to backoff (or FAILED).
static void
s_expire (hcp_client_t *self, int64_t now)
{
    while (self->in_flight.head && self->in_flight.head->due_us <= now)
        s_attempt_failed (self, self->in_flight.head, now);
    if (self->stalled)
        for (s_entry_t *entry = self->queued.head, *next; entry; entry = next) {
            next = entry->next;
            if (entry->due_us && entry->due_us <= now) {
                entry->due_us = 0;
                s_attempt_failed (self, entry, now);
            }
        }
}

//  Reads every answer waiting on the socket.
static void
s_receive (hcp_client_t *self)
{
    zmq_msg_t message;
    zmq_msg_init (&message);
    while (zmq_msg_recv (&message, self->socket, ZMQ_DONTWAIT) >= 0) {
        //  An empty delimiter frame (from a proxy in between) is skipped.
        if (zmq_msg_size (&message) == 0 && zmq_msg_more (&message))
            continue;
        Hcp__V1__SubmitReply *reply = hcp__v1__submit_reply__unpack (
            NULL, zmq_msg_size (&message), zmq_msg_data (&message));
        s_entry_t *entry = reply ? zhashx_lookup (self->entries, reply->id) : NULL;
        //  No entry: a late answer to an attempt already answered. Only a
        //  known status counts; anything else is ignored and retried.
        if (entry && reply->status >= HCP__V1__ACK_STATUS__ACK_ACCEPTED
            && reply->status <= HCP__V1__ACK_STATUS__ACK_REJECTED) {
            hcp_client_result_t *result = s_finish (self, entry,
                                                    (hcp_client_status_t) reply->status);
            snprintf (result->field, sizeof result->field, "%s", reply->field);
            snprintf (result->code, sizeof result->code, "%s", reply->code);
            snprintf (result->reason, sizeof result->reason, "%s", reply->reason);
        }
        if (reply)
            hcp__v1__submit_reply__free_unpacked (reply, NULL);
    }
    zmq_msg_close (&message);
}

//  Drives the client once: send, receive, expire. Waits up to wait_us for
//  the socket (0: not at all).
static void
s_drive (hcp_client_t *self, int64_t wait_us)
{
    int64_t now = s_now_us ();
    s_pump (self, now);
    s_receive (self);
    if (self->results_count)
        return;
    //  Sleep until an answer can come or the next timer is due.
    int64_t wake = now + wait_us;
    if (self->in_flight.head && self->in_flight.head->due_us < wake)
        wake = self->in_flight.head->due_us;
    for (s_entry_t *entry = self->backoff.head; entry; entry = entry->next)
        if (entry->due_us < wake)
            wake = entry->due_us;
    if (self->stalled && now + 5000 < wake)
        wake = now + 5000; //  look again soon for a connected ingest
    if (wake > now) {
        zmq_pollitem_t item = {self->socket, 0, ZMQ_POLLIN, 0};
        long timeout_ms = (long) ((wake - now + 999) / 1000);
        zmq_poll (&item, 1, timeout_ms);
        s_receive (self);
    }
    now = s_now_us ();
    s_expire (self, now);
    s_pump (self, now);
}

//  --------------------------------------------------------------------------
//  Public API

void
hcp_client_options_default (hcp_client_options_t *options)
{
    options->timeout_ms = 5000;
    options->max_attempts = 8;
    options->backoff_ms = 200;
    options->backoff_max_ms = 10000;
    options->max_in_flight = 100;
}

hcp_client_t *
hcp_client_new (const char *endpoints, const hcp_client_options_t *options)
{
    pthread_once (&s_context_once, s_context_create);
    if (!s_context || !endpoints || !*endpoints) {
        errno = EINVAL;
        return NULL;
    }
    hcp_client_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    hcp_client_options_default (&self->options);
    if (options) {
        if (options->timeout_ms > 0)
            self->options.timeout_ms = options->timeout_ms;
        if (options->max_attempts > 0)
            self->options.max_attempts = options->max_attempts;
        if (options->backoff_ms > 0)
            self->options.backoff_ms = options->backoff_ms;
        if (options->backoff_max_ms > 0)
            self->options.backoff_max_ms = options->backoff_max_ms;
        if (options->max_in_flight > 0)
            self->options.max_in_flight = options->max_in_flight;
    }
    snprintf (self->endpoints, sizeof self->endpoints, "%s", endpoints);
    self->entries = zhashx_new ();
    self->socket = zmq_socket (s_context, ZMQ_DEALER);
    if (!self->socket)
        abort ();
    int one = 1, zero = 0;
    int hwm = self->options.max_in_flight * 2 > 1000 ? self->options.max_in_flight * 2 : 1000;
    int reconnect_ms = 100, reconnect_max_ms = 2000;
    zmq_setsockopt (self->socket, ZMQ_IMMEDIATE, &one, sizeof one);
    zmq_setsockopt (self->socket, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt (self->socket, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->socket, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt (self->socket, ZMQ_RECONNECT_IVL, &reconnect_ms, sizeof reconnect_ms);
    zmq_setsockopt (self->socket, ZMQ_RECONNECT_IVL_MAX, &reconnect_max_ms,
                    sizeof reconnect_max_ms);
    char *list = strdup (endpoints);
    char *save = NULL;
    int connected = 0;
    for (char *endpoint = strtok_r (list, ",", &save); endpoint;
         endpoint = strtok_r (NULL, ",", &save)) {
        while (*endpoint == ' ')
            endpoint++;
        size_t length = strlen (endpoint);
        while (length && endpoint[length - 1] == ' ')
            endpoint[--length] = 0;
        if (!*endpoint)
            continue;
        if (zmq_connect (self->socket, endpoint) != 0) {
            int error = errno;
            free (list);
            hcp_client_destroy (&self);
            errno = error;
            return NULL;
        }
        connected++;
    }
    free (list);
    if (!connected) {
        hcp_client_destroy (&self);
        errno = EINVAL;
        return NULL;
    }
    return self;
}

void
hcp_client_destroy (hcp_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    hcp_client_t *self = *self_p;
    s_list_t *lists[] = {&self->queued, &self->in_flight, &self->backoff};
    for (int i = 0; i < 3; i++)
        while (lists[i]->head) {
            s_entry_t *entry = lists[i]->head;
            s_unlink (self, entry);
            free (entry->data);
            free (entry);
        }
    zhashx_destroy (&self->entries);
    if (self->socket)
        zmq_close (self->socket);
    free (self->results);
    free (self);
    *self_p = NULL;
}

int
hcp_client_send (hcp_client_t *self, const Hcp__V1__Submit *submit, void *tag)
{
    const char *id = NULL;
    if (submit && submit->fact_case == HCP__V1__SUBMIT__FACT_RATING && submit->rating)
        id = submit->rating->rating_id;
    else if (submit && submit->fact_case == HCP__V1__SUBMIT__FACT_DELIVERY && submit->delivery)
        id = submit->delivery->delivery_id;
    if (!id || !*id || strlen (id) >= sizeof ((s_entry_t *) 0)->id) {
        errno = EINVAL;
        return -1;
    }
    if (zhashx_lookup (self->entries, id)) {
        errno = EEXIST;
        return -1;
    }
    s_entry_t *entry = calloc (1, sizeof *entry);
    if (!entry)
        abort ();
    snprintf (entry->id, sizeof entry->id, "%s", id);
    entry->size = hcp__v1__submit__get_packed_size (submit);
    entry->data = malloc (entry->size ? entry->size : 1);
    if (!entry->data)
        abort ();
    hcp__v1__submit__pack (submit, entry->data);
    entry->tag = tag;
    zhashx_insert (self->entries, entry->id, entry);
    s_append (self, entry, S_QUEUED, false);
    if (self->in_flight.count < (size_t) self->options.max_in_flight)
        s_pump (self, s_now_us ());
    return 0;
}

int
hcp_client_send_rating (hcp_client_t *self, const Hcp__V1__Rating *rating, void *tag)
{
    Hcp__V1__Submit submit = HCP__V1__SUBMIT__INIT;
    submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
    submit.rating = (Hcp__V1__Rating *) rating;
    return hcp_client_send (self, &submit, tag);
}

int
hcp_client_send_delivery (hcp_client_t *self, const Hcp__V1__Delivery *delivery, void *tag)
{
    Hcp__V1__Submit submit = HCP__V1__SUBMIT__INIT;
    submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
    submit.delivery = (Hcp__V1__Delivery *) delivery;
    return hcp_client_send (self, &submit, tag);
}

int
hcp_client_wait (hcp_client_t *self, int timeout_ms, hcp_client_result_t *result)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : s_now_us () + (int64_t) timeout_ms * 1000;
    while (1) {
        if (self->results_count) {
            s_result_take (self, 0, result);
            return 1;
        }
        if (zhashx_size (self->entries) == 0)
            return -1;
        int64_t now = s_now_us ();
        if (now >= deadline) {
            s_drive (self, 0);
            if (self->results_count)
                continue;
            return 0;
        }
        int64_t wait = deadline - now;
        s_drive (self, wait > 1000000 ? 1000000 : wait);
    }
}

size_t
hcp_client_pending (hcp_client_t *self)
{
    return zhashx_size (self->entries) + self->results_count;
}

int
hcp_client_submit (hcp_client_t *self, const Hcp__V1__Submit *submit,
                   hcp_client_result_t *result)
{
    //  A unique tag marks our own result among others arriving meanwhile.
    char marker;
    if (hcp_client_send (self, submit, &marker) != 0)
        return -1;
    while (1) {
        for (size_t i = 0; i < self->results_count; i++)
            if (self->results[i].tag == &marker) {
                s_result_take (self, i, result);
                result->tag = NULL;
                return 0;
            }
        s_drive (self, 1000000);
    }
}

const char *
hcp_client_status_name (hcp_client_status_t status)
{
    switch (status) {
    case HCP_CLIENT_ACCEPTED:
        return "accepted";
    case HCP_CLIENT_DUPLICATE:
        return "duplicate";
    case HCP_CLIENT_REJECTED:
        return "rejected";
    case HCP_CLIENT_FAILED:
        return "failed";
    }
    return "unknown";
}

//  --------------------------------------------------------------------------
//  Enum names

static const char *s_channels[] = {
    NULL,         "hall-device", "window-qr",      "online",
    "mobile-app", "hotline",     "suggestion-box", "solicitation"};
static const char *s_stages[] = {NULL, "application", "consultation", "completion"};
static const char *s_rater_types[] = {NULL,
                                      "natural-person",
                                      "enterprise",
                                      "public-institution",
                                      "social-organisation",
                                      "administrative-organ",
                                      "other"};

static int
s_parse (const char *name, const char **names, int count)
{
    if (!name || !*name)
        return -1;
    char *end;
    long number = strtol (name, &end, 10);
    if (!*end)
        return number >= 1 && number < count ? (int) number : -1;
    for (int i = 1; i < count; i++) {
        const char *a = name, *b = names[i];
        while (*a && *b && (tolower ((unsigned char) *a) == *b || (*a == '_' && *b == '-')))
            a++, b++;
        if (!*a && !*b)
            return i;
    }
    return -1;
}

int
hcp_client_channel_parse (const char *name)
{
    return s_parse (name, s_channels, 8);
}

const char *
hcp_client_channel_name (int channel)
{
    return channel >= 1 && channel <= 7 ? s_channels[channel] : "unknown";
}

int
hcp_client_stage_parse (const char *name)
{
    return s_parse (name, s_stages, 4);
}

const char *
hcp_client_stage_name (int stage)
{
    return stage >= 1 && stage <= 3 ? s_stages[stage] : "unknown";
}

int
hcp_client_rater_type_parse (const char *name)
{
    return s_parse (name, s_rater_types, 7);
}

const char *
hcp_client_rater_type_name (int rater_type)
{
    return rater_type >= 1 && rater_type <= 6 ? s_rater_types[rater_type] : "unknown";
}

static const char *s_grades[] = {"unrated",      "very-satisfied",
                                 "satisfied",    "basically-satisfied",
                                 "dissatisfied", "very-dissatisfied"};
static const char *s_grades_zh[] = {"未评价",   "非常满意", "满意",
                                    "基本满意", "不满意",   "非常不满意"};

int
hcp_client_grade_parse (const char *name)
{
    if (!name || !*name)
        return 0;
    if (name[0] >= '0' && name[0] <= '5' && !name[1])
        return name[0] - '0';
    for (int i = 0; i < 6; i++)
        if (!strcmp (name, s_grades_zh[i]))
            return i;
    int grade = s_parse (name, s_grades, 6);
    if (grade < 0 && !strcasecmp (name, "unrated"))
        grade = 0;
    return grade;
}

const char *
hcp_client_grade_name (int grade)
{
    return grade >= 0 && grade <= 5 ? s_grades[grade] : "unknown";
}
