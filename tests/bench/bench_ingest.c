/*  bench_ingest — acknowledged durable ratings per second through hcp-ingest,
    against the raw COPY rate of the same rows into the same tables.

    For 1, 4 and 16 adapters (threads, each its own hcp_client with 100 in
    flight) sending ratings as fast as acknowledgements come back: ratings/s
    and ack latency p50/p99. Then 4 adapters paced at half the peak rate:
    ack latency p50/p99 there (target p99 ≤ 20 ms). Before and after those
    runs, in a fresh database on the same server, the same rows with COPY
    (text format, 500 rows per transaction like ingest's batches): ratings
    rows and their events rows, since ingest writes both. Ratio of the best
    ingest rate to the mean COPY rate (target ≥ 0.6).

    Each run has its own fresh database (from HCP_TEST_TEMPLATE)
    and its own hcp-ingest on an ipc:// endpoint. A table, not a test: it
    exits 0 unless something broke. Environment: HCP_BENCH_RATINGS (ratings
    per run, default 60000), HCP_BENCH_SECONDS (paced run, default 5).
*/
#include "hcp_client.h"
#include "hcp_clock.h"
#include "hcp_test.h"
#include "hcp_uuid.h"

#include <libpq-fe.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_ITEM "000119001000"

typedef struct {
    char id[HCP_UUID_STR_LEN];
    char key[16];
    int64_t at_ms;
    int grades[3];
    int channel, stage;
    const char *comment;
} row_t;

static const char *s_comments[] = {
    "办理速度很快，窗口工作人员态度热情，材料一次性告知清楚，非常方便",
    "网上申报流程清晰，审批结果及时推送，节省了很多时间和精力",
    "等待时间有点长，希望增加自助服务终端，减少排队时间，提高效率",
    "咨询电话一次就讲清楚了，工作人员专业耐心，值得表扬和推广"};

static row_t *s_rows;
static size_t s_row_count;

static void
s_make_rows (size_t count)
{
    s_rows = calloc (count, sizeof *s_rows);
    s_row_count = count;
    int64_t now = hcp_clock_now_ms ();
    for (size_t i = 0; i < count; i++) {
        row_t *row = &s_rows[i];
        row->at_ms = now - 86400000LL + (int64_t) i;
        hcp_uuid_v7 (row->at_ms, row->id);
        snprintf (row->key, sizeof row->key, "acct-%06zu", i % 100000);
        for (int g = 0; g < 3; g++)
            row->grades[g] = 1 + (int) ((i * 7 + (size_t) g * 3) % 3);
        if (i % 12 == 0)
            row->grades[1] = 4; //  ~8 % bad
        row->channel = 1 + (int) (i % 5);
        row->stage = 1 + (int) (i % 3);
        row->comment = s_comments[i % 4];
    }
}

static void
s_fill (const row_t *row, Hcp__V1__Rating *rating, Hcp__V1__Rater *rater)
{
    static const Hcp__V1__Rating rating_init = HCP__V1__RATING__INIT;
    static const Hcp__V1__Rater rater_init = HCP__V1__RATER__INIT;
    *rating = rating_init;
    *rater = rater_init;
    rater->type = HCP__V1__RATER_TYPE__RATER_NATURAL_PERSON;
    rater->key = (char *) row->key;
    rater->division_code = (char *) "110102";
    rating->rating_id = (char *) row->id;
    rating->item_code = (char *) S_ITEM;
    rating->channel = (Hcp__V1__Channel) row->channel;
    rating->stage = (Hcp__V1__Stage) row->stage;
    rating->rating_count = 1;
    rating->rater = rater;
    rating->rated_at_ms = row->at_ms;
    rating->standardization = (Hcp__V1__Grade) row->grades[0];
    rating->convenience = (Hcp__V1__Grade) row->grades[1];
    rating->accuracy = (Hcp__V1__Grade) row->grades[2];
    rating->comment = (char *) row->comment;
}

//  A fresh database from the template, named bench_<label>_<pid>: not t_*,
//  which a test suite starting meanwhile would drop.
static char *
s_db_create (const char *label)
{
    const char *template = getenv ("HCP_TEST_TEMPLATE");
    PGconn *admin = hcp_test_connect ("dbname=postgres");
    char *conninfo;
    if (asprintf (&conninfo, "dbname=bench_%s_%d", label, (int) getpid ()) < 0)
        abort ();
    hcp_test_sql_exec (admin, "DROP DATABASE IF EXISTS %s WITH (FORCE)", conninfo + 7);
    hcp_test_sql_exec (admin, "CREATE DATABASE %s TEMPLATE %s", conninfo + 7,
                       template ? template : "hcp_template");
    PQfinish (admin);
    return conninfo;
}

static int64_t
s_now_us (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

//  --------------------------------------------------------------------------
//  Adapters

typedef struct {
    const char *endpoint;
    size_t first, count;     //  rows[first .. first+count)
    double rate;             //  submissions/s for this adapter; 0 = as fast as possible
    int64_t *latencies;      //  out: µs, one per row
    size_t answered, failed; //  out
    pthread_barrier_t *barrier;
} adapter_t;

static void *
s_adapter (void *arg)
{
    adapter_t *self = arg;
    hcp_client_options_t options;
    hcp_client_options_default (&options);
    options.max_in_flight = 100;
    options.timeout_ms = 30000;
    hcp_client_t *client = hcp_client_new (self->endpoint, &options);
    //  Let the connection come up before the clock starts.
    usleep (100000);
    pthread_barrier_wait (self->barrier);
    int64_t started = s_now_us ();
    size_t sent = 0;
    hcp_client_result_t result;
    while (self->answered < self->count) {
        //  Keep the window full (or follow the pace).
        while (sent < self->count && hcp_client_pending (client) < 200) {
            if (self->rate > 0) {
                int64_t due = started + (int64_t) ((double) sent * 1e6 / self->rate);
                if (s_now_us () < due)
                    break;
            }
            Hcp__V1__Rating rating;
            Hcp__V1__Rater rater;
            s_fill (&s_rows[self->first + sent], &rating, &rater);
            hcp_client_send_rating (client, &rating, NULL);
            sent++;
        }
        int wait_ms = -1;
        if (self->rate > 0 && sent < self->count) {
            int64_t due = started + (int64_t) ((double) sent * 1e6 / self->rate);
            int64_t left = due - s_now_us ();
            //  Round up: a zero wait would spin and starve the server.
            wait_ms = left > 0 ? (int) ((left + 999) / 1000) : 0;
        }
        int rc = hcp_client_wait (client, wait_ms, &result);
        if (rc == 1) {
            if (result.status != HCP_CLIENT_ACCEPTED)
                self->failed++;
            self->latencies[self->answered++] = result.latency_us;
        }
        else if (rc < 0 && sent >= self->count)
            break;
    }
    hcp_client_destroy (&client);
    return NULL;
}

static int
s_compare_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

typedef struct {
    double rate; //  acknowledged ratings/s
    double p50_ms, p99_ms;
    size_t failed;
} outcome_t;

//  Starts ingest on a fresh database, runs adapters over rows [0, count),
//  checks the count stored.
static outcome_t
s_run (const char *label, int adapters, size_t count, double total_rate)
{
    outcome_t outcome = {0};
    char *conninfo = s_db_create (label);
    char *dir = hcp_test_tmpdir ("bench");
    char endpoint[512], log[512], env_db[600], env_bind[600];
    snprintf (endpoint, sizeof endpoint, "ipc://%s/ingest", dir);
    snprintf (log, sizeof log, "%s/ingest.log", dir);
    snprintf (env_db, sizeof env_db, "HCP_DATABASE_CONNINFO=%s", conninfo);
    snprintf (env_bind, sizeof env_bind, "HCP_INGEST_BIND=%s", endpoint);
    const char *argv[] = {"hcp-ingest", NULL};
    const char *env[] = {env_db, env_bind, "HCP_INGEST_STATS_SECONDS=3600", NULL};
    pid_t pid = hcp_test_spawn ("hcp-ingest", argv, env, log);

    pthread_barrier_t barrier;
    pthread_barrier_init (&barrier, NULL, (unsigned) adapters + 1);
    adapter_t *list = calloc ((size_t) adapters, sizeof *list);
    pthread_t *threads = calloc ((size_t) adapters, sizeof *threads);
    int64_t *latencies = calloc (count, sizeof *latencies);
    size_t share = count / (size_t) adapters;
    for (int a = 0; a < adapters; a++) {
        list[a].endpoint = endpoint;
        list[a].first = (size_t) a * share;
        list[a].count = a == adapters - 1 ? count - list[a].first : share;
        list[a].rate = total_rate / adapters;
        list[a].latencies = latencies + list[a].first;
        list[a].barrier = &barrier;
        pthread_create (&threads[a], NULL, s_adapter, &list[a]);
    }
    //  Wait for ingest to be up (it binds after loading the catalog).
    PGconn *conn = hcp_test_connect (conninfo);
    hcp_test_sleep_ms (300);
    pthread_barrier_wait (&barrier);
    int64_t started = s_now_us ();
    size_t answered = 0;
    for (int a = 0; a < adapters; a++) {
        pthread_join (threads[a], NULL);
        answered += list[a].answered;
        outcome.failed += list[a].failed;
    }
    double seconds = (double) (s_now_us () - started) / 1e6;
    outcome.rate = (double) answered / seconds;
    qsort (latencies, answered, sizeof *latencies, s_compare_i64);
    if (answered) {
        outcome.p50_ms = (double) latencies[answered / 2] / 1000.0;
        outcome.p99_ms = (double) latencies[answered * 99 / 100] / 1000.0;
    }
    long long stored = hcp_test_sql_int (conn, "SELECT count(*) FROM ratings");
    long long events = hcp_test_sql_int (conn, "SELECT count(*) FROM events");
    if ((size_t) stored != count || (size_t) events != count) {
        fprintf (stderr, "bench_ingest: %s: %lld ratings and %lld events stored, %zu sent\n",
                 label, stored, events, count);
        outcome.failed += count;
    }
    PQfinish (conn);
    hcp_test_stop (pid, SIGTERM, 10000);
    hcp_test_db_drop (conninfo);
    pthread_barrier_destroy (&barrier);
    free (list);
    free (threads);
    free (latencies);
    free (conninfo);
    free (dir);
    return outcome;
}

//  --------------------------------------------------------------------------
//  Raw COPY of the same rows

static void
s_hex (char *out, const uint8_t *bytes, size_t size)
{
    static const char digits[] = "0123456789abcdef";
    out[0] = '\\';
    out[1] = '\\';
    out[2] = 'x';
    for (size_t i = 0; i < size; i++) {
        out[3 + 2 * i] = digits[bytes[i] >> 4];
        out[4 + 2 * i] = digits[bytes[i] & 15];
    }
    out[3 + 2 * size] = 0;
}

static double
s_copy (size_t count, int batch)
{
    char *conninfo = s_db_create ("copy");
    PGconn *conn = hcp_test_connect (conninfo);
    //  Build the COPY text of every row first: the clock measures the server.
    char **rating_lines = calloc (count, sizeof (char *));
    char **event_lines = calloc (count, sizeof (char *));
    uint8_t fingerprint[32];
    char fingerprint_hex[80];
    for (size_t i = 0; i < count; i++) {
        const row_t *row = &s_rows[i];
        Hcp__V1__Rating rating;
        Hcp__V1__Rater rater;
        s_fill (row, &rating, &rater);
        size_t size = hcp__v1__rating__get_packed_size (&rating);
        uint8_t *payload = malloc (size);
        hcp__v1__rating__pack (&rating, payload);
        char *payload_hex = malloc (size * 2 + 8);
        s_hex (payload_hex, payload, size);
        for (int b = 0; b < 32; b++)
            fingerprint[b] = payload[(size_t) b % size] ^ (uint8_t) i;
        s_hex (fingerprint_hex, fingerprint, 32);
        char at[40];
        time_t seconds = (time_t) (row->at_ms / 1000);
        struct tm tm;
        gmtime_r (&seconds, &tm);
        strftime (at, sizeof at, "%Y-%m-%d %H:%M:%S", &tm);
        if (asprintf (
                &rating_lines[i],
                "%s\t\\N\t%s\t%d\t%d\t1\t1\t%s\t110102\t%s.%03d+00\t%d\t%d\t%d\t%s\t%s\n",
                row->id, S_ITEM, row->channel, row->stage, row->key, at,
                (int) (row->at_ms % 1000), row->grades[0], row->grades[1], row->grades[2],
                row->comment, fingerprint_hex)
            < 0)
            abort ();
        if (asprintf (&event_lines[i], "rating.stored\t%s\t%s\n", row->id, payload_hex) < 0)
            abort ();
        free (payload);
        free (payload_hex);
    }
    int64_t started = s_now_us ();
    for (size_t first = 0; first < count; first += (size_t) batch) {
        size_t last = first + (size_t) batch < count ? first + (size_t) batch : count;
        PQclear (PQexec (conn, "BEGIN"));
        PGresult *res = PQexec (
            conn, "COPY ratings (rating_id, delivery_id, item_code, channel, stage, "
                  "rating_count, rater_type, rater_key, division_code, rated_at, "
                  "standardization, convenience, accuracy, comment, fingerprint) "
                  "FROM STDIN");
        PQclear (res);
        for (size_t i = first; i < last; i++)
            PQputCopyData (conn, rating_lines[i], (int) strlen (rating_lines[i]));
        PQputCopyEnd (conn, NULL);
        res = PQgetResult (conn);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            fprintf (stderr, "bench_ingest: COPY ratings: %s", PQresultErrorMessage (res));
        PQclear (res);
        PQclear (PQexec (conn, "COPY events (type, key, payload) FROM STDIN"));
        for (size_t i = first; i < last; i++)
            PQputCopyData (conn, event_lines[i], (int) strlen (event_lines[i]));
        PQputCopyEnd (conn, NULL);
        res = PQgetResult (conn);
        if (PQresultStatus (res) != PGRES_COMMAND_OK)
            fprintf (stderr, "bench_ingest: COPY events: %s", PQresultErrorMessage (res));
        PQclear (res);
        PQclear (PQexec (conn, "COMMIT"));
    }
    double seconds = (double) (s_now_us () - started) / 1e6;
    long long stored = hcp_test_sql_int (conn, "SELECT count(*) FROM ratings");
    if ((size_t) stored != count)
        fprintf (stderr, "bench_ingest: COPY stored %lld of %zu rows\n", stored, count);
    for (size_t i = 0; i < count; i++) {
        free (rating_lines[i]);
        free (event_lines[i]);
    }
    free (rating_lines);
    free (event_lines);
    PQfinish (conn);
    hcp_test_db_drop (conninfo);
    free (conninfo);
    return (double) count / seconds;
}

int
main (void)
{
    const char *env = getenv ("HCP_BENCH_RATINGS");
    size_t count = env ? strtoul (env, NULL, 10) : 60000;
    env = getenv ("HCP_BENCH_SECONDS");
    double paced_seconds = env ? atof (env) : 5.0;
    if (count < 1000)
        count = 1000;
    s_make_rows (count);

    printf ("bench_ingest: %zu ratings per run (~%zu bytes each on the wire), batch_max "
            "500\n\n",
            count, (size_t) 0 + 300);
    printf ("%-34s %12s %9s %9s %7s\n", "run", "ratings/s", "p50 ms", "p99 ms", "failed");
    //  COPY before and after the ingest runs: on a shared machine the load
    //  drifts, and the ratio uses their mean.
    double copy_before = s_copy (count, 500);
    printf ("%-34s %12.0f %9s %9s %7s\n", "raw COPY (ratings + events), first", copy_before,
            "-", "-", "-");
    fflush (stdout);
    int adapters_list[] = {1, 4, 16};
    double peak = 0;
    int failures = 0;
    for (int i = 0; i < 3; i++) {
        char label[64];
        snprintf (label, sizeof label, "ingest_%d", adapters_list[i]);
        outcome_t o = s_run (label, adapters_list[i], count, 0);
        printf ("%-34s %12.0f %9.2f %9.2f %7zu\n",
                adapters_list[i] == 1   ? "ingest, 1 adapter"
                : adapters_list[i] == 4 ? "ingest, 4 adapters"
                                        : "ingest, 16 adapters",
                o.rate, o.p50_ms, o.p99_ms, o.failed);
        fflush (stdout);
        if (o.rate > peak)
            peak = o.rate;
        failures += o.failed > 0;
    }
    size_t paced_count = (size_t) (peak / 2 * paced_seconds);
    if (paced_count > count)
        paced_count = count;
    outcome_t paced = s_run ("ingest_paced", 4, paced_count, peak / 2);
    char label[64];
    snprintf (label, sizeof label, "ingest, 4 adapters at %.0f/s", peak / 2);
    printf ("%-34s %12.0f %9.2f %9.2f %7zu\n", label, paced.rate, paced.p50_ms, paced.p99_ms,
            paced.failed);
    failures += paced.failed > 0;
    double copy_after = s_copy (count, 500);
    printf ("%-34s %12.0f %9s %9s %7s\n", "raw COPY (ratings + events), last", copy_after, "-",
            "-", "-");
    double copy = (copy_before + copy_after) / 2;
    printf ("\nratio ingest/COPY: %.2f (best ingest run / mean COPY; target >= 0.6); ack p99 "
            "at half of peak: %.2f ms (target <= 20 ms)\n",
            peak / copy, paced.p99_ms);
    free (s_rows);
    return failures ? 1 : 0;
}
