/*  hcpctl sample — realistic sample traffic for a local system (make run).

    Sends, through hcp_client like any adapter: deliveries over all seven
    channels and three stages across the catalog's items; ratings for most
    of them (mostly good, about 8 % bad, some channels rating only some
    dimensions, Chinese comments, personal data for follow-up visits on
    some); suggestion-box and solicitation-letter ratings that name no
    delivery; resends of stored facts (answered duplicate); and one or more
    of each kind of invalid submission (answered rejected). Prints what
    ingest answered, by channel, and the rejections by code.
*/
#include "hcpctl.h"

#include "hcp_client.h"
#include "hcp_clock.h"
#include "hcp_uuid.h"

#include <czmq.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_help =
    "Usage: hcpctl sample [--deliveries N] [--endpoint E] [--seed S] [--window N]\n"
    "\n"
    "Sends realistic sample traffic to hcp-ingest: N deliveries (default 3000) over\n"
    "all 7 channels and 3 stages across the active catalog items (read from the\n"
    "database), ratings for about 85 %% of them (about 8 %% bad, some rating only some\n"
    "dimensions, Chinese comments), suggestion-box and solicitation ratings without\n"
    "a delivery, about 3 %% resent (answered duplicate) and invalid submissions of "
    "every\n"
    "kind (answered rejected). Prints the answers by channel and the rejections by "
    "code.\n"
    "Ids are new on every run, so running it again adds more data.\n"
    "\n"
    "  --deliveries N   deliveries to send (default 3000)\n"
    "  --endpoint E     ingest endpoint(s) (default: config ingest.endpoint or "
    "ingest.bind)\n"
    "  --seed S         random seed (default: from the clock)\n"
    "  --window N       submissions in flight (default 200)\n"
    "Exit code: 0 if every answer was the expected one, 1 otherwise, 2 on a usage "
    "error.\n";

//  What the sample expects ingest to answer.
typedef enum { E_STORED, E_DUPLICATE, E_REJECTED } expect_t;

typedef struct {
    int channel; //  1..7, or 0 for a message that is not a Submit
    bool rating;
    bool bad; //  a bad rating (some dimension 4 or 5)
    expect_t expect;
} sent_t;

#define S_CODES 40

typedef struct {
    hcp_client_t *client;
    sent_t *sent;
    size_t sent_count, sent_capacity;
    long answers[8][5]; //  [channel][hcp_client_status_t]
    long bad_ratings[8];
    long sent_by_channel[8];
    char codes[S_CODES][32];
    long code_counts[S_CODES];
    long unexpected;
    uint64_t random;
    struct {
        uint8_t *data;
        size_t size;
    } * kept; //  encoded submissions to resend
    size_t kept_count, kept_capacity;
} sample_t;

static uint64_t
s_random (sample_t *self)
{
    //  xorshift64*: a repeatable sequence for a given --seed.
    self->random ^= self->random >> 12;
    self->random ^= self->random << 25;
    self->random ^= self->random >> 27;
    return self->random * 2685821657736338717ULL;
}

static int
s_below (sample_t *self, int n)
{
    return (int) (s_random (self) % (uint64_t) n);
}

static bool
s_chance (sample_t *self, int percent)
{
    return s_below (self, 1000) < percent * 10;
}

static void
s_count_code (sample_t *self, const char *code)
{
    for (int i = 0; i < S_CODES; i++) {
        if (!self->codes[i][0])
            snprintf (self->codes[i], sizeof self->codes[i], "%s", code);
        if (!strcmp (self->codes[i], code)) {
            self->code_counts[i]++;
            return;
        }
    }
}

static void
s_take (sample_t *self, const hcp_client_result_t *result)
{
    const sent_t *sent = &self->sent[(size_t) (intptr_t) result->tag];
    self->answers[sent->channel][result->status]++;
    if (result->status == HCP_CLIENT_ACCEPTED && sent->bad)
        self->bad_ratings[sent->channel]++;
    if (result->status == HCP_CLIENT_REJECTED)
        s_count_code (self, result->code);
    bool expected = (sent->expect == E_STORED && result->status == HCP_CLIENT_ACCEPTED)
                    || (sent->expect == E_DUPLICATE && result->status == HCP_CLIENT_DUPLICATE)
                    || (sent->expect == E_REJECTED && result->status == HCP_CLIENT_REJECTED);
    if (!expected) {
        self->unexpected++;
        fprintf (stderr, "hcpctl sample: %s %s answered %s %s %s\n",
                 sent->rating ? "rating" : "delivery", result->id,
                 hcp_client_status_name (result->status), result->code, result->reason);
    }
}

//  Sends one submission, remembering what is expected of it.
static void
s_send (sample_t *self, const Hcp__V1__Submit *submit, int channel, bool bad, expect_t expect)
{
    if (self->sent_count == self->sent_capacity) {
        self->sent_capacity = self->sent_capacity ? self->sent_capacity * 2 : 1024;
        self->sent = realloc (self->sent, self->sent_capacity * sizeof *self->sent);
        if (!self->sent)
            abort ();
    }
    size_t index = self->sent_count++;
    self->sent[index] = (sent_t){channel >= 1 && channel <= 7 ? channel : 0,
                                 submit->fact_case == HCP__V1__SUBMIT__FACT_RATING, bad,
                                 expect};
    self->sent_by_channel[self->sent[index].channel]++;
    //  The same id may still be in flight (a resend of a resend): wait.
    while (hcp_client_send (self->client, submit, (void *) (intptr_t) index) != 0) {
        hcp_client_result_t result;
        if (errno != EEXIST || hcp_client_wait (self->client, -1, &result) != 1)
            return;
        s_take (self, &result);
    }
}

static void
s_drain (sample_t *self)
{
    hcp_client_result_t result;
    while (hcp_client_wait (self->client, -1, &result) == 1)
        s_take (self, &result);
}

//  --------------------------------------------------------------------------
//  Content

static const char *s_good_comments[] = {"",
                                        "",
                                        "",
                                        "",
                                        "办理很快，工作人员态度很好",
                                        "材料一次性告知，很方便",
                                        "网上办理流程清晰，不用跑腿",
                                        "窗口人员耐心解答问题",
                                        "比承诺时限提前办结",
                                        "满意",
                                        "自助终端操作简单",
                                        "电话咨询一次就讲清楚了"};
static const char *s_bad_comments[] = {
    "等待时间太长，排队两个多小时", "材料要求前后不一致，多跑了三次", "热线电话一直打不通",
    "系统经常卡顿，提交失败好几次", "工作人员解释不清楚，态度冷淡",   "办结时间超过承诺时限"};
static const char *s_names[] = {"张伟", "王芳", "李娜", "刘洋",
                                "陈静", "杨磊", "赵敏", "黄强"};

typedef struct {
    char id[72];
    char item[72];
    int channel;
    int stage;
    int rater_type;
    int64_t at_ms;
} delivery_t;

static int
s_rater_type (sample_t *self)
{
    int roll = s_below (self, 100);
    return roll < 70   ? 1 //  natural person
           : roll < 90 ? 2 //  enterprise
           : roll < 94 ? 3
           : roll < 97 ? 4
           : roll < 99 ? 5
                       : 6;
}

//  Grades of one rating on channel: which dimensions the channel rates, and
//  good or bad.
static bool
s_grades (sample_t *self, int channel, Hcp__V1__Rating *rating)
{
    bool bad = s_chance (self, 8);
    Hcp__V1__Grade *dims[3] = {&rating->standardization, &rating->convenience,
                               &rating->accuracy};
    for (int d = 0; d < 3; d++)
        *dims[d] = (Hcp__V1__Grade) (1 + s_below (self, 3)); //  1..3: good
    if (bad) {
        int worst = s_below (self, 3);
        *dims[worst] = (Hcp__V1__Grade) (4 + s_below (self, 2));
        if (s_chance (self, 40))
            *dims[(worst + 1) % 3] = (Hcp__V1__Grade) (4 + s_below (self, 2));
    }
    //  The hotline IVR asks one overall question; some devices skip one.
    if (channel == HCP__V1__CHANNEL__CHANNEL_HOTLINE) {
        Hcp__V1__Grade keep = bad ? (Hcp__V1__Grade) (4 + s_below (self, 2)) : *dims[0];
        *dims[0] = keep;
        *dims[1] = *dims[2] = HCP__V1__GRADE__GRADE_UNRATED;
    }
    else if (s_chance (self, 10)) {
        int skip = s_below (self, 3);
        if (*dims[skip] < 4 || !bad)
            *dims[skip] = HCP__V1__GRADE__GRADE_UNRATED;
    }
    return rating->standardization >= 4 || rating->convenience >= 4 || rating->accuracy >= 4;
}

static void
s_rating_for (sample_t *self, const delivery_t *delivery, int64_t now_ms, char *id,
              Hcp__V1__Rating *rating, Hcp__V1__Rater *rater, bool *bad)
{
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    *rating = rating_init;
    *rater = rater_init;
    int64_t span = now_ms - delivery->at_ms;
    if (span > 2 * 86400000LL)
        span = 2 * 86400000LL;
    int64_t at = delivery->at_ms + 60000
                 + (int64_t) (s_random (self) % (uint64_t) (span > 60000 ? span - 60000 : 1));
    hcp_uuid_v7 (at, id);
    rating->rating_id = id;
    rating->delivery_id = (char *) delivery->id;
    rating->item_code = (char *) delivery->item;
    rating->channel = (Hcp__V1__Channel) delivery->channel;
    rating->stage = (Hcp__V1__Stage) delivery->stage;
    rating->rating_count = s_chance (self, 5) ? 2 : 1;
    rater->type = (Hcp__V1__RaterType) delivery->rater_type;
    rating->rater = rater;
    rating->rated_at_ms = at;
    *bad = s_grades (self, delivery->channel, rating);
    rating->comment = (char *) (*bad ? s_bad_comments[s_below (self, 6)]
                                     : s_good_comments[s_below (self, 12)]);
}

//  --------------------------------------------------------------------------

//  Keeps an encoded copy of submit, to send it again later.
static void
s_keep (sample_t *self, const Hcp__V1__Submit *submit)
{
    if (self->kept_count == self->kept_capacity) {
        self->kept_capacity = self->kept_capacity ? self->kept_capacity * 2 : 64;
        self->kept = realloc (self->kept, self->kept_capacity * sizeof *self->kept);
        if (!self->kept)
            abort ();
    }
    size_t size = hcp__v1__submit__get_packed_size (submit);
    self->kept[self->kept_count].data = malloc (size ? size : 1);
    if (!self->kept[self->kept_count].data)
        abort ();
    self->kept[self->kept_count].size = size;
    hcp__v1__submit__pack (submit, self->kept[self->kept_count].data);
    self->kept_count++;
}

//  One or more of each kind of bad input, all expected to be rejected.
static void
s_send_invalid (sample_t *self, const delivery_t *first, const delivery_t *second,
                const char *item, int64_t now_ms, const char *prefix)
{
    static const Hcp__V1__Submit submit_init = HCP__V1__SUBMIT__INIT;
    enum {
        BAD_ITEM,
        BAD_CHANNEL,
        BAD_STAGE,
        BAD_GRADE,
        BAD_COUNT,
        NO_DIMENSION,
        IN_FUTURE,
        BEFORE_DELIVERY,
        UNKNOWN_DELIVERY,
        LONG_COMMENT,
        BAD_UTF8,
        NO_RATER_TYPE,
        BAD_UUID,
        CONFLICT,
        TOO_LARGE,
        BAD_DELIVERY_ID,
        KINDS
    };
    char *long_comment = malloc (2101 * 3 + 1);
    char *huge_comment = malloc (70 * 1024 + 1);
    if (!long_comment || !huge_comment)
        abort ();
    for (int i = 0; i < 2101; i++)
        memcpy (long_comment + i * 3, "好", 3);
    long_comment[2101 * 3] = 0;
    memset (huge_comment, 'x', 70 * 1024);
    huge_comment[70 * 1024] = 0;
    for (int kind = 0; kind < KINDS; kind++) {
        Hcp__V1__Rating rating;
        Hcp__V1__Rater rater;
        bool bad;
        char id[HCP_UUID_STR_LEN];
        s_rating_for (self, first, now_ms, id, &rating, &rater, &bad);
        Hcp__V1__Submit submit = submit_init;
        submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
        submit.rating = &rating;
        Hcp__V1__Delivery delivery = HCP__V1__DELIVERY__INIT;
        char delivery_id[80];
        switch (kind) {
        case BAD_ITEM:
            rating.item_code = (char *) "999999999999";
            break;
        case BAD_CHANNEL:
            rating.channel = (Hcp__V1__Channel) 12;
            break;
        case BAD_STAGE:
            rating.stage = (Hcp__V1__Stage) 9;
            break;
        case BAD_GRADE:
            rating.accuracy = (Hcp__V1__Grade) 7;
            break;
        case BAD_COUNT:
            rating.rating_count = 3;
            break;
        case NO_DIMENSION:
            rating.standardization = rating.convenience = rating.accuracy =
                HCP__V1__GRADE__GRADE_UNRATED;
            break;
        case IN_FUTURE:
            rating.rated_at_ms = now_ms + 3600 * 1000;
            break;
        case BEFORE_DELIVERY:
            rating.delivery_id = (char *) second->id;
            rating.item_code = (char *) second->item;
            rating.rated_at_ms = second->at_ms - 3600 * 1000;
            break;
        case UNKNOWN_DELIVERY:
            snprintf (delivery_id, sizeof delivery_id, "%s-NEVER-SENT", prefix);
            rating.delivery_id = delivery_id;
            break;
        case LONG_COMMENT:
            rating.comment = long_comment;
            break;
        case BAD_UTF8:
            rating.comment = (char *) "\xe5\x8a\x9e\xe4 half a character";
            break;
        case NO_RATER_TYPE:
            rater.type = HCP__V1__RATER_TYPE__RATER_TYPE_UNSPECIFIED;
            break;
        case BAD_UUID:
            rating.rating_id = (char *) "not-a-uuid-1234";
            break;
        case CONFLICT:
            //  An id stored earlier in this run (the first kept rating),
            //  with other content: a conflict, not a duplicate.
            for (size_t i = 0; i < self->kept_count; i++) {
                Hcp__V1__Submit *old = hcp__v1__submit__unpack (NULL, self->kept[i].size,
                                                                self->kept[i].data);
                if (old && old->fact_case == HCP__V1__SUBMIT__FACT_RATING) {
                    snprintf (id, sizeof id, "%s", old->rating->rating_id);
                    hcp__v1__submit__free_unpacked (old, NULL);
                    rating.comment = (char *) "内容被修改后重发";
                    break;
                }
                if (old)
                    hcp__v1__submit__free_unpacked (old, NULL);
            }
            break;
        case TOO_LARGE:
            rating.comment = huge_comment;
            break;
        case BAD_DELIVERY_ID:
            delivery.delivery_id = (char *) "has spaces in it";
            delivery.item_code = (char *) item;
            delivery.stage = HCP__V1__STAGE__STAGE_APPLICATION;
            delivery.channel = HCP__V1__CHANNEL__CHANNEL_ONLINE;
            delivery.rater = &rater;
            delivery.delivered_at_ms = now_ms - 1000;
            submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
            submit.delivery = &delivery;
            break;
        }
        s_send (self, &submit, first->channel, false, E_REJECTED);
    }
    free (long_comment);
    free (huge_comment);
}

static void
s_print_summary (sample_t *self)
{
    printf ("%-16s %8s %9s %10s %9s %7s %12s\n", "channel", "sent", "accepted", "duplicate",
            "rejected", "failed", "bad ratings");
    long total[6] = {0};
    for (int c = 1; c <= 8; c++) {
        int channel = c % 8; //  the undecodable message (channel 0) last
        const char *name = channel ? hcp_client_channel_name (channel) : "(not a Submit)";
        long *a = self->answers[channel];
        if (!self->sent_by_channel[channel])
            continue;
        printf ("%-16s %8ld %9ld %10ld %9ld %7ld %12ld\n", name,
                self->sent_by_channel[channel], a[1], a[2], a[3], a[4],
                self->bad_ratings[channel]);
        total[0] += self->sent_by_channel[channel];
        for (int s = 1; s <= 4; s++)
            total[s] += a[s];
        total[5] += self->bad_ratings[channel];
    }
    printf ("%-16s %8ld %9ld %10ld %9ld %7ld %12ld\n", "total", total[0], total[1], total[2],
            total[3], total[4], total[5]);
    printf ("\nrejections by code:");
    for (int i = 0; i < S_CODES && self->codes[i][0]; i++)
        printf ("%s %s %ld", i ? "," : "", self->codes[i], self->code_counts[i]);
    printf ("\n");
    if (self->unexpected)
        printf ("%ld answers were not the expected ones (see above)\n", self->unexpected);
}

static int
s_load_items (hcp_config_t *config, char ***items_p)
{
    hcp_db_t *db = hcpctl_connect (config);
    if (!db)
        return -1;
    int count = -1;
    if (hcp_db_prepare (db, "sample_items",
                        "SELECT item_code FROM service_items WHERE active ORDER BY item_code")
        == 0) {
        PGresult *res = hcp_db_run (db, "sample_items", 0, NULL);
        if (hcp_db_ok (db, res)) {
            count = PQntuples (res);
            *items_p = calloc ((size_t) count + 1, sizeof (char *));
            for (int i = 0; i < count; i++)
                (*items_p)[i] = strdup (PQgetvalue (res, i, 0));
        }
        PQclear (res);
    }
    if (count < 0)
        fprintf (stderr, "hcpctl sample: cannot read the catalog: %s\n", hcp_db_error (db));
    hcp_db_destroy (&db);
    return count;
}

//  A message that is no Submit at all, sent on a plain socket: hcp_client
//  only sends what it can match to an id.
static int
s_send_garbage (const char *endpoint, sample_t *self)
{
    zsock_t *socket = zsock_new (ZMQ_DEALER);
    if (!socket || zsock_attach (socket, endpoint, false) != 0) {
        zsock_destroy (&socket);
        return -1;
    }
    zsock_set_rcvtimeo (socket, 10000);
    zsock_set_linger (socket, 0);
    static const char garbage[] = "\xff\xff\xff\xff this is not a protobuf message";
    zstr_send (socket, garbage);
    self->sent_by_channel[0]++;
    zframe_t *frame = zframe_recv (socket);
    int rc = -1;
    if (frame) {
        Hcp__V1__SubmitReply *reply = hcp__v1__submit_reply__unpack (NULL, zframe_size (frame),
                                                                     zframe_data (frame));
        if (reply) {
            self->answers[0][reply->status >= 1 && reply->status <= 3 ? reply->status : 4]++;
            if (reply->status == HCP__V1__ACK_STATUS__ACK_REJECTED) {
                s_count_code (self, reply->code);
                rc = 0;
            }
            hcp__v1__submit_reply__free_unpacked (reply, NULL);
        }
        zframe_destroy (&frame);
    }
    else
        self->answers[0][HCP_CLIENT_FAILED]++;
    if (rc)
        self->unexpected++;
    zsock_destroy (&socket);
    return rc;
}

int
hcpctl_sample (hcp_config_t *config, int argc, char **argv)
{
    if (hcpctl_wants_help (argc, argv)) {
        printf (s_help);
        return 0;
    }
    long deliveries_n = 3000, window = 200;
    unsigned long long seed = 0;
    const char *endpoint_flag = NULL;
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        const char *value = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if (!value) {
            fprintf (stderr, "hcpctl sample: %s needs a value (see --help)\n", arg);
            return 2;
        }
        if (!strcmp (arg, "--deliveries"))
            deliveries_n = strtol (value, &end, 10);
        else if (!strcmp (arg, "--window"))
            window = strtol (value, &end, 10);
        else if (!strcmp (arg, "--seed"))
            seed = strtoull (value, &end, 10);
        else if (!strcmp (arg, "--endpoint"))
            endpoint_flag = value;
        else {
            fprintf (stderr, "hcpctl sample: unknown option %s (see --help)\n", arg);
            return 2;
        }
        if (end && *end) {
            fprintf (stderr, "hcpctl sample: %s needs a number\n", arg);
            return 2;
        }
        i++;
    }
    if (deliveries_n < 10 || deliveries_n > 10000000 || window < 1 || window > 10000) {
        fprintf (stderr, "hcpctl sample: --deliveries from 10, --window from 1 to 10000\n");
        return 2;
    }
    char **items = NULL;
    int item_count = s_load_items (config, &items);
    if (item_count <= 0) {
        if (item_count == 0)
            fprintf (stderr, "hcpctl sample: the catalog has no active item; load one first: "
                             "hcpctl catalog load deploy/config/catalog.yaml\n");
        free (items);
        return 1;
    }
    const char *endpoint = hcpctl_ingest_endpoint (config, endpoint_flag);
    hcp_client_options_t options;
    hcp_client_options_default (&options);
    options.max_in_flight = (int) window;
    sample_t *self = calloc (1, sizeof *self);
    if (!self)
        abort ();
    self->client = hcp_client_new (endpoint, &options);
    if (!self->client) {
        fprintf (stderr, "hcpctl sample: bad ingest endpoint '%s'\n", endpoint);
        free (self);
        return 2;
    }
    int64_t now_ms = hcp_clock_now_ms ();
    self->random = seed ? seed : (uint64_t) now_ms * 2654435761ULL + 1;
    //  A prefix new on every run, so that every run adds data.
    char prefix[32];
    snprintf (prefix, sizeof prefix, "S%llx",
              (unsigned long long) (now_ms / 1000) % 0xfffffff);

    //  1. Deliveries, over all channels and stages, within the last 6 days.
    delivery_t *deliveries = calloc ((size_t) deliveries_n, sizeof *deliveries);
    if (!deliveries)
        abort ();
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    static const Hcp__V1__Delivery delivery_init = HCP__V1__DELIVERY__INIT;
    static const Hcp__V1__Submit submit_init = HCP__V1__SUBMIT__INIT;
    for (long i = 0; i < deliveries_n; i++) {
        delivery_t *d = &deliveries[i];
        snprintf (d->id, sizeof d->id, "%s-%06ld", prefix, i);
        snprintf (d->item, sizeof d->item, "%s", items[s_below (self, item_count)]);
        d->channel = 1 + (int) (i % 7);
        d->stage = 1 + s_below (self, 3);
        d->rater_type = s_rater_type (self);
        d->at_ms = now_ms - 600000 - (int64_t) (s_random (self) % (6 * 86400000ULL));
        Hcp__V1__Rater rater = rater_init;
        rater.type = (Hcp__V1__RaterType) d->rater_type;
        char key[32];
        snprintf (key, sizeof key, "acct-%05d", s_below (self, 20000));
        rater.key = key;
        rater.division_code = (char *) "110102";
        if (d->channel == HCP__V1__CHANNEL__CHANNEL_HALL_DEVICE && s_chance (self, 30)) {
            rater.name = (char *) s_names[s_below (self, 8)];
            rater.phone = (char *) "13800138000";
        }
        Hcp__V1__Delivery delivery = delivery_init;
        delivery.delivery_id = d->id;
        delivery.item_code = d->item;
        delivery.stage = (Hcp__V1__Stage) d->stage;
        delivery.channel = (Hcp__V1__Channel) d->channel;
        delivery.rater = &rater;
        delivery.delivered_at_ms = d->at_ms;
        Hcp__V1__Submit submit = submit_init;
        submit.fact_case = HCP__V1__SUBMIT__FACT_DELIVERY;
        submit.delivery = &delivery;
        s_send (self, &submit, d->channel, false, E_STORED);
        if (s_chance (self, 3))
            s_keep (self, &submit);
    }
    s_drain (self);

    //  2. Ratings for about 85 % of them; about 3 % resent afterwards.
    bool kept_rating = false;
    char (*rating_ids)[HCP_UUID_STR_LEN] = calloc ((size_t) deliveries_n, HCP_UUID_STR_LEN);
    if (!rating_ids)
        abort ();
    for (long i = 0; i < deliveries_n; i++) {
        if (!s_chance (self, 85))
            continue;
        Hcp__V1__Rating rating;
        Hcp__V1__Rater rater;
        bool bad;
        s_rating_for (self, &deliveries[i], now_ms, rating_ids[i], &rating, &rater, &bad);
        if (bad && deliveries[i].channel == HCP__V1__CHANNEL__CHANNEL_HALL_DEVICE) {
            rater.name = (char *) s_names[s_below (self, 8)];
            rater.phone = (char *) "13900139000";
        }
        Hcp__V1__Submit submit = submit_init;
        submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
        submit.rating = &rating;
        s_send (self, &submit, deliveries[i].channel, bad, E_STORED);
        //  Keep the first rating (the conflict below needs one) and ~3 %.
        if (!kept_rating || s_chance (self, 3))
            s_keep (self, &submit);
        kept_rating = true;
    }
    //  Paper channels: letters and the suggestion box, no delivery named;
    //  ids derived from the letter number, as hcpctl submit csv does.
    long letters = deliveries_n / 20 + 2;
    for (long i = 0; i < letters; i++) {
        int channel = i % 2 ? HCP__V1__CHANNEL__CHANNEL_SOLICITATION
                            : HCP__V1__CHANNEL__CHANNEL_SUGGESTION_BOX;
        delivery_t paper = {
            .channel = channel, .stage = 3, .rater_type = 1, .at_ms = now_ms - 3 * 86400000LL};
        snprintf (paper.item, sizeof paper.item, "%s", items[s_below (self, item_count)]);
        Hcp__V1__Rating rating;
        Hcp__V1__Rater rater;
        bool bad;
        char id[HCP_UUID_STR_LEN], ref[64];
        s_rating_for (self, &paper, now_ms, id, &rating, &rater, &bad);
        snprintf (ref, sizeof ref, "%s-L%04ld", prefix, i);
        char namespace_text[64];
        snprintf (namespace_text, sizeof namespace_text, "hcp:rating:%s",
                  hcp_client_channel_name (channel));
        hcp_uuid_from_name (namespace_text, ref, id);
        rating.delivery_id = (char *) "";
        Hcp__V1__Submit submit = submit_init;
        submit.fact_case = HCP__V1__SUBMIT__FACT_RATING;
        submit.rating = &rating;
        s_send (self, &submit, channel, bad, E_STORED);
    }
    s_drain (self);

    //  3. Resends: the same bytes under the same id, as an adapter sends
    //  them again after a timeout: answered duplicate, nothing stored.
    for (size_t i = 0; i < self->kept_count; i++) {
        Hcp__V1__Submit *submit = hcp__v1__submit__unpack (NULL, self->kept[i].size,
                                                           self->kept[i].data);
        int channel = submit->fact_case == HCP__V1__SUBMIT__FACT_RATING
                          ? (int) submit->rating->channel
                          : (int) submit->delivery->channel;
        s_send (self, submit, channel, false, E_DUPLICATE);
        hcp__v1__submit__free_unpacked (submit, NULL);
    }
    s_drain (self);

    //  4. Invalid submissions, each of a kind ingest must refuse.
    s_send_invalid (self, &deliveries[0], &deliveries[1], items[0], now_ms, prefix);
    s_drain (self);
    s_send_garbage (endpoint, self);

    s_print_summary (self);
    int rc = self->unexpected ? 1 : 0;
    hcp_client_destroy (&self->client);
    free (rating_ids);
    free (deliveries);
    for (int i = 0; i < item_count; i++)
        free (items[i]);
    free (items);
    for (size_t i = 0; i < self->kept_count; i++)
        free (self->kept[i].data);
    free (self->kept);
    free (self->sent);
    free (self);
    return rc;
}
